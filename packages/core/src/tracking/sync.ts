import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isMlflowError, type DatasetInput as MlflowDatasetInput, type MetricInput, type MlflowClient, type Run } from '@tessera/mlflow';
import { ensureRunLoggedModels } from '../models/logged-model.ts';
import { defaultRunsDir, findRunDir, isSampleMetric, readAllMetrics, readRunMeta, type RunMeta } from './local-store.ts';
import { writeJsonAtomic } from '../safety/atomic-write.ts';
import { acquireRunLock } from './run-lock.ts';
import type { DatasetInput } from './tracker.ts';

/**
 * Local run -> MLflow replication. The local run store is the record; MLflow is a copy that
 * `syncRun` brings up to date by comparing the two, so replaying is idempotent: whatever MLflow
 * already has (a param, a metric at a step, an artifact of the same size, the status) is not
 * sent again, and the run is found again by id rather than created twice.
 *
 * Per run, `mlflow.json` in the run directory remembers, per tracking server, the MLflow run id
 * and whether MLflow is missing anything (`pending`), with the calls that did not get through
 * (`outbox`, for people: the comparison decides what is sent).
 */
export const SYNC_STATE_FILE = 'mlflow.json';

/** Tag that ties an MLflow run to its local run (also how a lost run id is found again). */
export const LOCAL_RUN_ID_TAG = 'tessera.run_id';
/** Where the local run id of a parent run is kept; MLflow's own tag needs the parent's MLflow id. */
export const LOCAL_PARENT_TAG = 'tessera.parent_run_id';
export const MLFLOW_PARENT_TAG = 'mlflow.parentRunId';
/**
 * Tags whose local value is a local run id and whose MLflow value is that run's MLflow id (so the
 * UI's search `attributes.run_id = '...'` and a run URL work): a sweep run's best trial.
 */
export const RUN_ID_TAGS = ['best_run_id'] as const;
/**
 * Tags of every MLflow experiment Tessera creates: MLflow 3's UI opens an experiment of this kind
 * on its model-training view (runs, charts, compare) rather than on the GenAI one (traces).
 */
export const MLFLOW_EXPERIMENT_TAGS: Readonly<Record<string, string>> = { 'mlflow.experimentKind': 'custom_model_development' };

/**
 * The tags as MLflow should have them: each of RUN_ID_TAGS holds the MLflow id of the local run
 * it names (the local id stays as `tessera.<tag>`); one whose run MLflow does not have yet is
 * left out, and `unresolved` says so.
 */
export async function withMlflowRunIds(
  tags: Record<string, string>,
  mlflowRunId: (localRunId: string) => Promise<string | undefined>,
): Promise<{ tags: Record<string, string>; unresolved: boolean }> {
  const out = { ...tags };
  let unresolved = false;
  for (const key of RUN_ID_TAGS) {
    const local = tags[key];
    if (local === undefined) continue;
    const id = await mlflowRunId(local);
    out[`tessera.${key}`] = local;
    if (id) out[key] = id;
    else {
      delete out[key];
      unresolved = true;
    }
  }
  return { tags: out, unresolved };
}

export interface OutboxEntry {
  time: string;
  /** The tracker call that did not reach MLflow, e.g. "logMetrics step 3". */
  call: string;
}

export interface SyncState {
  trackingUri: string;
  experimentName: string;
  experimentId?: string;
  /** The MLflow run id, once the run exists there. */
  runId?: string;
  /** True while MLflow lacks something the local store has. */
  pending: boolean;
  outbox: OutboxEntry[];
  lastError?: string;
  lastSync?: string;
  /**
   * sha256 of each artifact as MLflow last received it, by path. MLflow's listing gives sizes
   * only: a best model rewritten at the same size must still be sent again.
   */
  artifacts?: Record<string, string>;
}

/** Every server a run was sent to, keyed by tracking URI (without credentials). */
export type SyncStates = Record<string, SyncState>;

export async function readSyncStates(runDir: string): Promise<SyncStates> {
  try {
    return JSON.parse(await readFile(join(runDir, SYNC_STATE_FILE), 'utf8')) as SyncStates;
  } catch {
    return {};
  }
}

/** Read-modify-write of one server's entry (one process writes a run's state at a time). */
export async function updateSyncState(runDir: string, trackingUri: string, update: (state: SyncState | undefined) => SyncState): Promise<SyncState> {
  const states = await readSyncStates(runDir);
  const next = update(states[trackingUri]);
  await writeJsonAtomic(join(runDir, SYNC_STATE_FILE), { ...states, [trackingUri]: next });
  return next;
}

/** The MLflow experiment of a run: tracking.experiment, else MLFLOW_EXPERIMENT_NAME, else the experiment's name. */
export function mlflowExperimentName(tracking: { experiment?: string } | undefined, experiment: string, env: NodeJS.ProcessEnv = process.env): string {
  return tracking?.experiment || env.MLFLOW_EXPERIMENT_NAME || experiment;
}

/** A local dataset record as MLflow's log-inputs entity (its digest is capped at 36 characters). */
export function toMlflowDataset(input: DatasetInput): MlflowDatasetInput {
  return {
    dataset: {
      name: input.name,
      digest: input.digest.slice(0, 36),
      sourceType: 'local',
      source: JSON.stringify({ uri: input.source }),
      ...(input.profile ? { profile: JSON.stringify(input.profile) } : {}),
    },
    ...(input.context ? { tags: { 'mlflow.data.context': input.context } } : {}),
  };
}

export interface SyncOptions {
  client: MlflowClient;
  /** Experiment for a run never sent to this server (default: see mlflowExperimentName). */
  experiment?: string;
  env?: NodeJS.ProcessEnv;
  /** How long to wait for another sync of the same run to finish (default 120 s). */
  lockWaitMs?: number;
}

export interface SyncResult {
  localRunId: string;
  runDir: string;
  mlflowRunId: string;
  experimentId: string;
  /** The MLflow run was created by this sync (false: found by id or by its tessera.run_id tag). */
  created: boolean;
  /** `models`: LoggedModels created (or completed) for the run's final and best models. */
  sent: { params: number; metrics: number; tags: number; inputs: number; artifacts: number; models: number; status: boolean };
  /** Params whose value in MLflow differs from the local one (MLflow params cannot change). */
  conflicts: string[];
}

async function readJsonFile<T>(path: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

/** sha256 (hex) of a file, streamed; of bytes, at once. */
export async function fileDigest(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function bytesDigest(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Relative '/'-separated paths and sha256 digests of every file under `dir` (temp files of an unfinished write excluded). */
async function localFiles(dir: string, prefix = ''): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) for (const [p, digest] of await localFiles(join(dir, entry.name), path)) files.set(p, digest);
    else if (entry.isFile() && !entry.name.endsWith('.tmp')) files.set(path, await fileDigest(join(dir, entry.name)));
  }
  return files;
}

/** Records that MLflow has the artifact `path` with this digest (the live tracker's uploads). */
export async function recordUploadedArtifact(runDir: string, trackingUri: string, path: string, digest: string): Promise<void> {
  await updateSyncState(runDir, trackingUri, (state) => ({
    trackingUri,
    experimentName: '',
    pending: false,
    outbox: [],
    ...state,
    artifacts: { ...state?.artifacts, [path]: digest },
  }));
}

async function remoteFiles(client: MlflowClient, runId: string, path = ''): Promise<Map<string, number | undefined>> {
  const files = new Map<string, number | undefined>();
  for (const info of await client.listArtifacts(runId, path)) {
    if (info.isDir) for (const [p, size] of await remoteFiles(client, runId, info.path)) files.set(p, size);
    else files.set(info.path, info.fileSize);
  }
  return files;
}

async function getRunIfExists(client: MlflowClient, runId: string): Promise<Run | undefined> {
  try {
    return await client.getRun(runId);
  } catch (error) {
    if (isMlflowError(error, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
    throw error;
  }
}

/**
 * The MLflow run id of a parent given by its local run id: looked up in the local store under
 * `root`, else (with `search`) in the MLflow experiment by the parent's `tessera.run_id` tag, for
 * a parent recorded in another store (a sweep's run, whose trials keep their own stores or run on
 * other machines). Undefined when that run was never sent to this server.
 */
export async function mlflowParentRunId(
  parentRunId: string,
  root: string,
  trackingUri: string,
  search?: { client: MlflowClient; experimentId: string },
): Promise<string | undefined> {
  const dir = await findRunDir(parentRunId, root).catch(() => undefined);
  const known = dir ? (await readSyncStates(dir))[trackingUri]?.runId : undefined;
  if (known || !search || !/^[\w.-]+$/.test(parentRunId)) return known;
  const found = await search.client.searchRuns({
    experimentIds: [search.experimentId],
    filter: `tags.\`${LOCAL_RUN_ID_TAG}\` = '${parentRunId}'`,
    runViewType: 'ACTIVE_ONLY',
    maxResults: 1,
  });
  return found.items[0]?.info.runId;
}

/** The experiment name stored with the run's resolved config (artifacts/config.json). */
async function configuredExperiment(runDir: string, meta: RunMeta, env: NodeJS.ProcessEnv): Promise<string> {
  const config = await readJsonFile<{ tracking?: { experiment?: string } }>(join(runDir, 'artifacts', 'config.json'), {});
  return mlflowExperimentName(config.tracking, meta.experiment, env);
}

/**
 * Brings the MLflow copy of the local run in `runDir` up to date: creates (or finds) the run,
 * then sends the params, tags, metric values (per key and step), datasets, artifacts and (once
 * the run has ended) the LoggedModels of its final and best models it lacks, and its status and
 * end time.
 */
export async function syncRun(runDir: string, options: SyncOptions): Promise<SyncResult> {
  // One sync per run at a time (a second `exp sync` waits, then finds the run the first created).
  const lock = await acquireRunLock(runDir, { name: 'sync.lock', purpose: 'exp sync', waitMs: options.lockWaitMs ?? 120_000 });
  try {
    return await syncRunLocked(runDir, options);
  } finally {
    await lock.release();
  }
}

/**
 * After creating a run: if another process (on another host, without our lock) created one for
 * the same local run at the same time, all but the one with the smallest id are deleted, by
 * every racer alike, so exactly one survives.
 */
export async function resolveCreateRace(client: MlflowClient, experimentId: string, localRunId: string, mine: Run): Promise<Run> {
  const all = await client.searchAllRuns({ experimentIds: [experimentId], filter: `tags.\`${LOCAL_RUN_ID_TAG}\` = '${localRunId}'`, runViewType: 'ACTIVE_ONLY' });
  if (all.length <= 1) return mine;
  const sorted = [...all].sort((a, b) => a.info.runId.localeCompare(b.info.runId));
  for (const loser of sorted.slice(1)) await client.deleteRun(loser.info.runId).catch(() => undefined);
  return sorted[0]!.info.runId === mine.info.runId ? mine : await client.getRun(sorted[0]!.info.runId);
}

async function syncRunLocked(runDir: string, options: SyncOptions): Promise<SyncResult> {
  const { client } = options;
  const env = options.env ?? process.env;
  const trackingUri = client.trackingUri;
  const meta = await readRunMeta(runDir);
  const state = (await readSyncStates(runDir))[trackingUri];
  let run = state?.runId ? await getRunIfExists(client, state.runId) : undefined;
  let created = false;
  const experimentName = state?.experimentName ?? options.experiment ?? (await configuredExperiment(runDir, meta, env));
  // Runs live in <root>/<experiment>/<id>; the parent may be under another experiment, or in another store.
  const parentId = meta.parentRunId
    ? await mlflowParentRunId(meta.parentRunId, join(runDir, '..', '..'), trackingUri, {
        client,
        experimentId: run?.info.experimentId ?? (await client.getOrCreateExperiment(experimentName, { tags: { ...MLFLOW_EXPERIMENT_TAGS } })),
      })
    : undefined;
  if (!run) {
    const experimentId = await client.getOrCreateExperiment(experimentName, { tags: { ...MLFLOW_EXPERIMENT_TAGS } });
    // A create whose answer was lost (or whose state was never written) left a run behind.
    const found = await client.searchRuns({
      experimentIds: [experimentId],
      filter: `tags.\`${LOCAL_RUN_ID_TAG}\` = '${meta.runId}'`,
      runViewType: 'ACTIVE_ONLY',
      maxResults: 1,
    });
    run = found.items[0];
    if (!run) {
      run = await client.createRun({
        experimentId,
        runName: meta.runName,
        startTime: Date.parse(meta.startTime),
        tags: { [LOCAL_RUN_ID_TAG]: meta.runId, ...(parentId ? { [MLFLOW_PARENT_TAG]: parentId } : {}) },
      });
      const survivor = await resolveCreateRace(client, experimentId, meta.runId, run);
      created = survivor === run;
      run = survivor;
    }
    const mlflowRun = run;
    await updateSyncState(runDir, trackingUri, (old) => ({
      outbox: [],
      ...old,
      trackingUri,
      experimentName,
      experimentId,
      runId: mlflowRun.info.runId,
      pending: true,
    }));
  }
  const runId = run.info.runId;

  // Params: only the missing ones (MLflow refuses to change a param).
  const params = await readJsonFile<Record<string, string | number | boolean>>(join(runDir, 'params.json'), {});
  const missingParams: Record<string, string | number | boolean> = {};
  const conflicts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    const remote = run.data.params[key];
    if (remote === undefined) missingParams[key] = value;
    else if (remote !== String(value)) conflicts.push(key);
  }

  // Tags: any that differ. mlflow.parentRunId is derived: a local tag holds a local id.
  const tags = await readJsonFile<Record<string, string>>(join(runDir, 'tags.json'), {});
  delete tags[MLFLOW_PARENT_TAG];
  const wantedTags: Record<string, string> = {
    ...tags,
    [LOCAL_RUN_ID_TAG]: meta.runId,
    ...(meta.error ? { 'tessera.error': meta.error } : {}),
    ...(parentId ? { [MLFLOW_PARENT_TAG]: parentId } : {}),
  };
  // A sweep run reaches MLflow before its trials: until its best trial is there, the tag waits and the run stays pending.
  const linked = await withMlflowRunIds(wantedTags, (local) =>
    mlflowParentRunId(local, join(runDir, '..', '..'), trackingUri, { client, experimentId: run!.info.experimentId }),
  );
  const unresolved = linked.unresolved;
  const changedTags = Object.fromEntries(Object.entries(linked.tags).filter(([key, value]) => run!.data.tags[key] !== value));

  // Metrics: every (key, step) MLflow has no value for; the local line's time is the timestamp.
  // Per-epoch, system and per-step metrics (their keys differ; each file has its own steps).
  // The epochs' metrics go first (a sweep trial's objective first of all): MLflow's compare page
  // plots a run's first metric. A running run without any yet sends its samples with its first epoch.
  const remoteKeys = new Set(run.data.metrics.map((m) => m.key));
  const records = await readAllMetrics(runDir);
  const beforeFirstEpoch = meta.status === 'RUNNING' && remoteKeys.size === 0 && records.every((r) => Object.keys(r).every((k) => k === 'step' || k === 'time' || isSampleMetric(k)));
  const localKeys = new Set(beforeFirstEpoch ? [] : records.flatMap((r) => Object.keys(r).filter((k) => k !== 'step' && k !== 'time')));
  const metrics: MetricInput[] = [];
  for (const key of localKeys) {
    const have = remoteKeys.has(key) ? new Set((await client.getMetricHistory(runId, key)).map((m) => m.step)) : new Set<number>();
    for (const record of records) {
      if (!(key in record) || have.has(record.step)) continue;
      const value = record[key];
      // JSON has no NaN: the local store wrote it as null.
      metrics.push({ key, value: typeof value === 'number' ? value : NaN, step: record.step, timestamp: Date.parse(record.time) });
    }
  }
  if (Object.keys(missingParams).length + Object.keys(changedTags).length + metrics.length > 0) {
    await client.logBatch(runId, { params: missingParams, tags: changedTags, metrics });
  }

  // Datasets.
  const inputs = await readJsonFile<DatasetInput[]>(join(runDir, 'inputs.json'), []);
  const key = (d: MlflowDatasetInput) => `${d.dataset.name}\u0000${d.dataset.digest}\u0000${d.tags?.['mlflow.data.context'] ?? ''}`;
  const remoteInputs = new Set(run.inputs.datasetInputs.map(key));
  const missingInputs = inputs.map(toMlflowDataset).filter((d) => !remoteInputs.has(key(d)));
  if (missingInputs.length > 0) await client.logInputs(runId, missingInputs);

  // Artifacts: missing in MLflow's listing, or not known to have been sent with this content.
  const artifactsDir = join(runDir, 'artifacts');
  const local = await localFiles(artifactsDir);
  const remote = local.size > 0 ? await remoteFiles(client, runId) : new Map<string, number | undefined>();
  const sentDigests = { ...(await readSyncStates(runDir))[trackingUri]?.artifacts };
  let artifacts = 0;
  for (const [path, digest] of local) {
    if (remote.has(path) && sentDigests[path] === digest) continue;
    await client.uploadFile(runId, join(artifactsDir, ...path.split('/')), path);
    await recordUploadedArtifact(runDir, trackingUri, path, digest);
    artifacts++;
  }

  // The models as LoggedModels, once the run has ended (a running run's best model still changes):
  // those MLflow lacks (the run was offline when they were saved), linked to the metrics of their epoch.
  const models = meta.status === 'RUNNING' ? 0 : (await ensureRunLoggedModels(runDir, { client, runId, experimentId: run.info.experimentId })).created;

  // Status and end time, last: a FINISHED run in MLflow has everything.
  const endTime = meta.endTime ? Date.parse(meta.endTime) : undefined;
  const statusChanged = run.info.status !== meta.status || (endTime !== undefined && run.info.endTime !== endTime);
  if (statusChanged) await client.updateRun(runId, { status: meta.status, ...(endTime !== undefined ? { endTime } : {}) });

  await updateSyncState(runDir, trackingUri, ({ lastError: _fixed, ...old } = { trackingUri, experimentName, pending: false, outbox: [] }) => ({
    ...old,
    runId,
    pending: unresolved,
    outbox: [],
    lastSync: new Date().toISOString(),
  }));
  return {
    localRunId: meta.runId,
    runDir,
    mlflowRunId: runId,
    experimentId: run.info.experimentId,
    created,
    sent: {
      params: Object.keys(missingParams).length,
      metrics: metrics.length,
      tags: Object.keys(changedTags).length,
      inputs: missingInputs.length,
      artifacts,
      models,
      status: statusChanged,
    },
    conflicts,
  };
}

/**
 * Run directories under `root` that this server is missing something of: never sent there, or
 * pending (an outage during the run). `experiment` narrows to one experiment folder. Runs that
 * name no parent come first, so a sweep's run reaches MLflow before its trials, which find it
 * there by its local id and nest under it (sweeps nest one level deep).
 */
export async function runsToSync(trackingUri: string, options: { root?: string; experiment?: string } = {}): Promise<string[]> {
  const parents: string[] = [];
  const children: string[] = [];
  for (const dir of await listRunDirs(options)) {
    const state = (await readSyncStates(dir))[trackingUri];
    if (state && !state.pending && state.runId) continue;
    const meta = await readRunMeta(dir).catch(() => undefined);
    (meta?.parentRunId ? children : parents).push(dir);
  }
  return [...parents, ...children];
}

/**
 * Where a sweep keeps its trials' runs under a run store root (see sweepDir and the executors):
 * each attempt of each trial is a run store of its own, `sweeps/<sweep>/trials/<trial>/attempt-<n>/`.
 */
const SWEEP_ATTEMPT_STORES = ['sweeps', '*', 'trials', '*', 'attempt-*'];

/**
 * Every local run directory (one with meta.json), oldest first: the runs of `<root>/<experiment>/`
 * (sweep runs included) and the trial runs in the sweeps' attempt stores under `<root>/sweeps/`.
 */
export async function listRunDirs(options: { root?: string; experiment?: string } = {}): Promise<string[]> {
  const root = options.root ?? defaultRunsDir();
  const stores = [root, ...(await matchDirs(root, SWEEP_ATTEMPT_STORES))];
  const dirs: string[] = [];
  for (const store of stores) dirs.push(...(await storeRunDirs(store, options.experiment)));
  // Run ids start with a UTC timestamp.
  return dirs.sort((a, b) => (basename(a) < basename(b) ? -1 : basename(a) > basename(b) ? 1 : 0));
}

/** The run directories `<store>/<experiment>/<run>/` of one run store root. */
async function storeRunDirs(store: string, experiment?: string): Promise<string[]> {
  const dirs: string[] = [];
  for (const folder of await matchDirs(store, [experiment ?? '*', '*'])) {
    if (await stat(join(folder, 'meta.json')).then(() => true, () => false)) dirs.push(folder);
  }
  return dirs;
}

/** The directories below `dir` that match `pattern`, one segment per level (`*` and a `prefix*`). */
async function matchDirs(dir: string, pattern: readonly string[]): Promise<string[]> {
  if (pattern.length === 0) return [dir];
  const [segment, ...rest] = pattern as [string, ...string[]];
  const entries = (await readdir(dir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory());
  const matches = segment.endsWith('*') ? entries.filter((e) => e.name.startsWith(segment.slice(0, -1))) : entries.filter((e) => e.name === segment);
  const found: string[] = [];
  for (const entry of matches) found.push(...(await matchDirs(join(dir, entry.name), rest)));
  return found;
}
