import { mkdir, open, readFile, readdir, stat, truncate } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { copyFileAtomic, writeFileAtomic, writeJsonAtomic } from '../safety/atomic-write.ts';
import { assertSafeName, containedJoin } from '../safety/paths.ts';
import { acquireRunLock, type RunLock } from './run-lock.ts';
import { defaultRunName, type ArtifactContent, type DatasetInput, type ParamValue, type RunInfo, type RunStatus, type StartRunOptions, type Tracker } from './tracker.ts';

/**
 * The embedded run store: one directory per run, `<root>/<experiment>/<run-id>/`, holding
 * meta.json (status, times, error), params.json, tags.json, metrics.jsonl (append-only, one
 * JSON object per line, fsync'd on every call), artifacts/ and the trainer's checkpoint/.
 * Plain files on purpose: `cat` and `jq` are enough to read a run.
 */
export interface RunMeta {
  runId: string;
  experiment: string;
  runName: string;
  status: RunStatus;
  startTime: string;
  endTime?: string;
  /** Set when the run was resumed; one entry per resume. */
  resumedAt?: string[];
  error?: string;
  /** The run this one belongs to (StartRunOptions.parentRunId). */
  parentRunId?: string;
}

export interface MetricRecord {
  step: number;
  time: string;
  [metric: string]: number | string;
}

/** Default root: $TESSERA_RUNS_DIR, else `runs/` in the current directory. */
export function defaultRunsDir(): string {
  return resolve(process.env.TESSERA_RUNS_DIR ?? 'runs');
}

/** A sortable, readable id: 20261129-031502-ab12cd. */
export function newRunId(date = new Date()): string {
  const stamp = date.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

async function readJson<T>(path: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

/**
 * Where a sweep keeps its trials' runs under a run store root (see the sweeps' sweepDir and
 * executors): each attempt of each trial is a run store of its own,
 * `<root>/sweeps/<sweep>/trials/<trial>/attempt-<n>/`, holding `<experiment>/<run-id>/`.
 */
const SWEEP_ATTEMPT_STORES = ['sweeps', '*', 'trials', '*', 'attempt-*'];

/** The run stores under `root`: `root` itself, then every sweep trial attempt's store. */
export async function runStores(root: string): Promise<string[]> {
  return [root, ...(await matchDirs(root, SWEEP_ATTEMPT_STORES))];
}

/** The directories below `dir` that match `pattern`, one segment per level (`*` and a `prefix*`). */
export async function matchDirs(dir: string, pattern: readonly string[]): Promise<string[]> {
  if (pattern.length === 0) return [dir];
  const [segment, ...rest] = pattern as [string, ...string[]];
  const entries = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory());
  const matches = segment.endsWith('*') ? entries.filter((e) => e.name.startsWith(segment.slice(0, -1))) : entries.filter((e) => e.name === segment);
  const found: string[] = [];
  for (const entry of matches) found.push(...(await matchDirs(join(dir, entry.name), rest)));
  return found;
}

/**
 * Finds a run directory from what a user typed (--resume, exp predict, exp register, ...): a
 * path to the run directory, or a run id, searched under every experiment in `root` and then in
 * the sweeps' trial stores (a sweep's best trial is a run id like any other).
 */
export async function findRunDir(run: string, root = defaultRunsDir()): Promise<string> {
  const direct = resolve(run);
  const isRun = (dir: string) => stat(join(dir, 'meta.json')).then(() => true, () => false);
  if (await isRun(direct)) return direct;
  for (const store of await runStores(root)) {
    for (const experiment of await matchDirs(store, ['*'])) {
      const candidate = join(experiment, run);
      if (await isRun(candidate)) return candidate;
    }
  }
  throw new Error(`no run "${run}" found (looked for a run directory, for ${join(root, '*', run)} and in the sweeps' trials under ${join(root, 'sweeps')})`);
}

/** tags.json of a run ({} when it has none). */
export async function readRunTags(dir: string): Promise<Record<string, string>> {
  return readJson(join(dir, 'tags.json'), {});
}

export async function readRunMeta(dir: string): Promise<RunMeta> {
  return JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as RunMeta;
}

/** Where a run's system metrics and per-step metrics go (see LocalRunStore.logMetrics). */
export const SYSTEM_METRICS_FILE = 'system_metrics.jsonl';
export const STEP_METRICS_FILE = 'step_metrics.jsonl';
const SEPARATE_METRICS: Record<string, string> = { 'system/': SYSTEM_METRICS_FILE, 'step/': STEP_METRICS_FILE };

/** The file of a system sample or a per-step metric (`system/...`, `step/...`); undefined for an epoch's metric. */
function separateFileOf(key: string): string | undefined {
  return Object.entries(SEPARATE_METRICS).find(([prefix]) => key.startsWith(prefix))?.[1];
}

/** A system sample's or a per-step metric (`system/...`, `step/...`): kept apart from the epochs' metrics. */
export function isSampleMetric(key: string): boolean {
  return separateFileOf(key) !== undefined;
}

/** Appends a JSON line and fsyncs it: a crash loses at most the line being written. */
async function appendLine(path: string, record: Record<string, unknown>): Promise<void> {
  const handle = await open(path, 'a');
  try {
    await handle.appendFile(`${JSON.stringify(record)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The system metrics of a run (system_metrics.jsonl), by their own steps. */
export function readSystemMetrics(dir: string): Promise<MetricRecord[]> {
  return readMetrics(dir, SYSTEM_METRICS_FILE);
}

/** Every metric line of a run in every file: per epoch, system, per step (keys differ between files). */
export async function readAllMetrics(dir: string): Promise<MetricRecord[]> {
  return [...(await readMetrics(dir)), ...(await readSystemMetrics(dir)), ...(await readMetrics(dir, STEP_METRICS_FILE))];
}

/** A metrics file whose last line was cut short (power loss mid-write). */
export interface TornLine {
  file: string;
  /** 1-based line number and the bytes from which the file is whole again. */
  line: number;
  keepBytes: number;
  text: string;
}

/**
 * Every metrics line of a run; a later line for the same step supersedes an earlier one. A line
 * that is not whole JSON (a write cut short by a crash or power loss) is skipped and reported
 * through `onTorn`, never fatal: one torn line must not hide a store's other runs. Writers repair
 * the file (`repairMetrics`) before appending.
 */
export async function readMetrics(dir: string, file = 'metrics.jsonl', onTorn?: (torn: TornLine) => void): Promise<MetricRecord[]> {
  const byStep = new Map<number, MetricRecord>();
  for (const record of await readMetricLines(dir, file, onTorn)) byStep.set(record.step, { ...byStep.get(record.step), ...record });
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** One metric value as the line that last wrote it: its key, step, value (null: NaN) and that line's time. */
export interface MetricPoint {
  key: string;
  step: number;
  value: number | null;
  time: string;
}

/**
 * Every metric point of a run, in every metrics file, each with the time of its own line (the
 * epoch's and the test metrics share a step but not a line): the timestamp MLflow got when the
 * point was sent live, so that `exp sync` sends a missed point with the very same one.
 */
export async function readMetricPoints(dir: string): Promise<MetricPoint[]> {
  const points = new Map<string, MetricPoint>();
  for (const file of ['metrics.jsonl', SYSTEM_METRICS_FILE, STEP_METRICS_FILE]) {
    for (const { step, time, ...values } of await readMetricLines(dir, file)) {
      for (const [key, value] of Object.entries(values)) points.set(`${key}\u0000${step}`, { key, step, value: typeof value === 'number' ? value : null, time });
    }
  }
  return [...points.values()];
}

/** The whole lines of a metrics file in file order (torn ones skipped and reported, as readMetrics). */
async function readMetricLines(dir: string, file: string, onTorn?: (torn: TornLine) => void): Promise<MetricRecord[]> {
  const path = join(dir, file);
  const text = await readFile(path, 'utf8').catch(() => '');
  const records: MetricRecord[] = [];
  let offset = 0;
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    const start = offset;
    offset += Buffer.byteLength(line) + 1;
    if (!line.trim()) continue;
    let record: MetricRecord;
    try {
      record = JSON.parse(line) as MetricRecord;
      if (typeof record?.step !== 'number') throw new Error('no step');
    } catch {
      onTorn?.({ file: path, line: index + 1, keepBytes: start, text: line.length > 80 ? `${line.slice(0, 77)}...` : line });
      continue;
    }
    records.push(record);
  }
  return records;
}

/**
 * Cuts a torn last line off metrics.jsonl so that the next append starts on a fresh line (an
 * append after a torn line would glue onto it and lose both). Returns what was cut, if anything.
 */
export async function repairMetrics(dir: string, name = 'metrics.jsonl'): Promise<TornLine | undefined> {
  const file = join(dir, name);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (!text || text.endsWith('\n')) return undefined;
  const cut = text.lastIndexOf('\n') + 1;
  const tail = text.slice(cut);
  try {
    JSON.parse(tail);
    // A whole record that only lacks its newline: complete it instead of dropping it.
    const handle = await open(file, 'a');
    await handle.appendFile('\n').finally(() => handle.close());
    return undefined;
  } catch {
    const keepBytes = Buffer.byteLength(text.slice(0, cut));
    await truncate(file, keepBytes);
    const line = text.slice(0, cut).split('\n').length;
    return { file, line, keepBytes, text: tail.length > 80 ? `${tail.slice(0, 77)}...` : tail };
  }
}

export interface LocalRunStoreOptions {
  /** Where notes go (a repaired torn line); default: none. */
  log?: (message: string) => void;
  /** How the lock names its holder (`exp run`, `exp run --resume`). */
  purpose?: string;
}

export class LocalRunStore implements Tracker {
  private dir: string | undefined;
  private meta: RunMeta | undefined;
  private lock: RunLock | undefined;

  constructor(
    readonly root = defaultRunsDir(),
    readonly options: LocalRunStoreOptions = {},
  ) {}

  /**
   * The store of a finished run, to add to it (an evaluation's metrics and files) without
   * reopening it: its status and times stay as they are (endRun does nothing).
   */
  static async attach(runDir: string): Promise<LocalRunStore> {
    const store = new LocalRunStore(resolve(runDir, '..', '..'));
    await readRunMeta(runDir);
    store.dir = runDir;
    return store;
  }

  get runDir(): string {
    if (!this.dir) throw new Error('LocalRunStore: no run started');
    return this.dir;
  }

  async startRun(options: StartRunOptions): Promise<RunInfo> {
    if (options.resumeRunId) {
      this.dir = await findRunDir(options.resumeRunId, this.root);
      // One writer per run: a second `--resume` of a live run stops here, naming the holder.
      this.lock = await acquireRunLock(this.dir, { purpose: this.options.purpose ?? 'exp run --resume' });
      for (const name of ['metrics.jsonl', SYSTEM_METRICS_FILE, STEP_METRICS_FILE]) {
        const torn = await repairMetrics(this.dir, name);
        if (torn) this.options.log?.(`note: ${torn.file}:${torn.line}: cut off a torn last line (${JSON.stringify(torn.text)}), a write interrupted by a crash`);
      }
      const meta = await readRunMeta(this.dir);
      this.meta = { ...meta, status: 'RUNNING', resumedAt: [...(meta.resumedAt ?? []), new Date().toISOString()] };
      delete this.meta.endTime;
      delete this.meta.error;
    } else {
      const runId = newRunId();
      // Names are data, not paths: the experiment name is one directory level under the store.
      this.dir = containedJoin(this.root, assertSafeName(options.experiment, 'experiment name'), runId);
      try {
        await mkdir(join(this.dir, 'artifacts'), { recursive: true });
      } catch (error) {
        // Recursive mkdir reports a read-only file system as ENOENT: say what the user can check.
        throw new Error(`cannot create run directory ${this.dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (is the run store ${this.root} read-only, full or missing?)`, { cause: error });
      }
      this.lock = await acquireRunLock(this.dir, { purpose: this.options.purpose ?? 'exp run' });
      this.meta = {
        runId,
        experiment: options.experiment,
        runName: options.runName ?? defaultRunName(options.experiment, runId),
        status: 'RUNNING',
        startTime: new Date().toISOString(),
        ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
      };
    }
    await writeJsonAtomic(join(this.dir, 'meta.json'), this.meta);
    if (options.tags) await this.setTags(options.tags);
    return { runId: this.meta.runId, runName: this.meta.runName, experiment: this.meta.experiment, dir: this.dir };
  }

  async logParams(params: Record<string, ParamValue>): Promise<void> {
    const path = join(this.runDir, 'params.json');
    await writeJsonAtomic(path, { ...(await readJson(path, {})), ...params });
  }

  /** Refuses to write once another process has taken this run's lock over. */
  private assertWriter(): void {
    if (this.lock?.lost) throw new Error(`lost the lock of run ${this.runDir} to another process; this process stops writing to it`);
  }

  /**
   * Appends one line per call. Metrics on their own clock go to their own file: system metrics
   * (`system/...`) to system_metrics.jsonl, per-step ones (`step/...`) to step_metrics.jsonl, so
   * metrics.jsonl stays one line per epoch (the sweep's executors and `exp runs` read epochs from it).
   */
  async logMetrics(metrics: Record<string, number>, step: number, at?: number): Promise<void> {
    this.assertWriter();
    const time = new Date(at ?? Date.now()).toISOString();
    const byFile = new Map<string, Record<string, number>>();
    for (const [key, value] of Object.entries(metrics)) {
      const file = separateFileOf(key) ?? 'metrics.jsonl';
      byFile.set(file, { ...byFile.get(file), [key]: value });
    }
    if (byFile.size === 0) byFile.set('metrics.jsonl', {});
    for (const [file, values] of byFile) await appendLine(join(this.runDir, file), { step, time, ...values });
  }

  async setTags(tags: Record<string, string>): Promise<void> {
    const path = join(this.runDir, 'tags.json');
    await writeJsonAtomic(path, { ...(await readJson(path, {})), ...tags });
  }

  async logArtifact(path: string, content: ArtifactContent): Promise<void> {
    this.assertWriter();
    if (path.split('/').some((part) => part === '..' || part === '' || part === '.')) throw new Error(`bad artifact path "${path}"`);
    const target = containedJoin(join(this.runDir, 'artifacts'), ...path.split('/'));
    // Temp file + rename: a full disk leaves the previous artifact (or none), never a 0-byte PNG.
    if ('file' in content) await copyFileAtomic(content.file, target);
    else await writeFileAtomic(target, content.bytes);
  }

  /** inputs.json: every dataset logged, once per (name, digest, context). */
  async logInputs(datasets: DatasetInput[]): Promise<void> {
    const path = join(this.runDir, 'inputs.json');
    const all = [...(await readJson<DatasetInput[]>(path, [])), ...datasets];
    const unique = new Map(all.map((d) => [`${d.name}\u0000${d.digest}\u0000${d.context ?? ''}`, d]));
    await writeJsonAtomic(path, [...unique.values()]);
  }

  async endRun(status: Exclude<RunStatus, 'RUNNING'>, error?: string): Promise<void> {
    if (!this.meta) return;
    this.meta = { ...this.meta, status, endTime: new Date().toISOString(), ...(error ? { error } : {}) };
    try {
      if (!this.lock?.lost) await writeJsonAtomic(join(this.runDir, 'meta.json'), this.meta);
    } finally {
      await this.lock?.release();
      this.lock = undefined;
    }
  }
}
