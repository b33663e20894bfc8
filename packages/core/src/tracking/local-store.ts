import { copyFile, mkdir, open, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
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

/**
 * Writes JSON atomically: a crash leaves the old file or the new one, never half of one.
 * The temp name is unique, so two writers (a sweep and its trials) never share one.
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(value, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

async function readJson<T>(path: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

/**
 * Finds a run directory from what a user typed after --resume: a path to the run directory,
 * or a run id (searched under every experiment in `root`).
 */
export async function findRunDir(run: string, root = defaultRunsDir()): Promise<string> {
  const direct = resolve(run);
  if (await stat(join(direct, 'meta.json')).then(() => true, () => false)) return direct;
  const experiments = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const experiment of experiments) {
    if (!experiment.isDirectory()) continue;
    const candidate = join(root, experiment.name, run);
    if (await stat(join(candidate, 'meta.json')).then(() => true, () => false)) return candidate;
  }
  throw new Error(`no run "${run}" found (looked for a run directory and for ${join(root, '*', run)})`);
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

/** Every metrics line of a run; a later line for the same step supersedes an earlier one. */
export async function readMetrics(dir: string, file = 'metrics.jsonl'): Promise<MetricRecord[]> {
  const text = await readFile(join(dir, file), 'utf8').catch(() => '');
  const byStep = new Map<number, MetricRecord>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const record = JSON.parse(line) as MetricRecord;
    byStep.set(record.step, { ...byStep.get(record.step), ...record });
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

export class LocalRunStore implements Tracker {
  private dir: string | undefined;
  private meta: RunMeta | undefined;

  constructor(readonly root = defaultRunsDir()) {}

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
      const meta = await readRunMeta(this.dir);
      this.meta = { ...meta, status: 'RUNNING', resumedAt: [...(meta.resumedAt ?? []), new Date().toISOString()] };
      delete this.meta.endTime;
      delete this.meta.error;
    } else {
      const runId = newRunId();
      this.dir = join(this.root, options.experiment, runId);
      await mkdir(join(this.dir, 'artifacts'), { recursive: true });
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

  /**
   * Appends one line per call. Metrics on their own clock go to their own file: system metrics
   * (`system/...`) to system_metrics.jsonl, per-step ones (`step/...`) to step_metrics.jsonl, so
   * metrics.jsonl stays one line per epoch (the sweep's executors and `exp runs` read epochs from it).
   */
  async logMetrics(metrics: Record<string, number>, step: number): Promise<void> {
    const time = new Date().toISOString();
    const byFile = new Map<string, Record<string, number>>();
    for (const [key, value] of Object.entries(metrics)) {
      const file = Object.entries(SEPARATE_METRICS).find(([prefix]) => key.startsWith(prefix))?.[1] ?? 'metrics.jsonl';
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
    if (path.split('/').some((part) => part === '..' || part === '')) throw new Error(`bad artifact path "${path}"`);
    const target = join(this.runDir, 'artifacts', ...path.split('/'));
    await mkdir(dirname(target), { recursive: true });
    if ('file' in content) await copyFile(content.file, target);
    else await writeFile(target, content.bytes);
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
    await writeJsonAtomic(join(this.runDir, 'meta.json'), this.meta);
  }
}
