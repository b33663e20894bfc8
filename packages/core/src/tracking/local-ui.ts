import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { MlflowClient } from '@tessera/mlflow';
import { readRunMeta, STEP_METRICS_FILE, SYSTEM_METRICS_FILE } from './local-store.ts';
import { MLFLOW_EXPERIMENT_TAGS, listRunDirs, readSyncStates, runsToSync, syncRun, type SyncResult } from './sync.ts';

/**
 * `exp ui` as functions: the MLflow server it starts keeps its sqlite store and artifacts in
 * `<runs>/.mlflow/`, beside the runs, and is kept up to date by replaying the local runs with
 * `syncRun` (the same comparison `exp sync` makes, so it is incremental and idempotent).
 */
export const LOCAL_UI_DIR = '.mlflow';

/** Files whose change means the run has something MLflow may lack (a run still training, a tag added later). */
const RECORD_FILES = ['meta.json', 'metrics.jsonl', SYSTEM_METRICS_FILE, STEP_METRICS_FILE, 'params.json', 'tags.json', 'inputs.json', 'artifacts'];

async function modifiedSince(dir: string, since: number): Promise<boolean> {
  for (const file of RECORD_FILES) {
    const time = await stat(join(dir, file)).then((s) => s.mtimeMs, () => 0);
    if (time > since) return true;
  }
  return false;
}

/**
 * The runs under `root` this server lacks something of: those `runsToSync` names (never sent,
 * or pending), and those synced before their record changed (a run that was still training;
 * `syncStarted` holds when this process last began syncing each run).
 * Parents first, as runsToSync orders them, so trials nest under their sweep run.
 */
export async function runsChangedSinceSync(trackingUri: string, root: string, syncStarted: ReadonlyMap<string, number> = new Map()): Promise<string[]> {
  const missing = new Set(await runsToSync(trackingUri, { root }));
  const parents: string[] = [];
  const children: string[] = [];
  for (const dir of await listRunDirs({ root })) {
    if (!missing.has(dir)) {
      // When a sync of this process began (a line written during it may have been read or not),
      // else the end of the last one. A run recorded straight to this server (MLFLOW_TRACKING_URI)
      // has neither: its tracker sent it live.
      const lastSync = (await readSyncStates(dir))[trackingUri]?.lastSync;
      const since = syncStarted.get(dir) ?? (lastSync ? Date.parse(lastSync) : undefined);
      if (since === undefined || !(await modifiedSince(dir, since))) continue;
    }
    const meta = await readRunMeta(dir).catch(() => undefined);
    (meta?.parentRunId ? children : parents).push(dir);
  }
  return [...parents, ...children];
}

export interface SyncPassResult {
  synced: SyncResult[];
  failed: { dir: string; error: string }[];
}

/** One pass: sends every changed run, then, once more, any run still pending (a sweep run whose best trial reached MLflow after it). */
export async function syncChangedRuns(
  client: MlflowClient,
  root: string,
  options: { experiment?: string; syncStarted?: Map<string, number> } = {},
): Promise<SyncPassResult> {
  const result: SyncPassResult = { synced: [], failed: [] };
  const syncStarted = options.syncStarted ?? new Map<string, number>();
  const send = async (dir: string) => {
    syncStarted.set(dir, Date.now());
    try {
      result.synced.push(await syncRun(dir, { client, ...(options.experiment ? { experiment: options.experiment } : {}) }));
    } catch (error) {
      result.failed.push({ dir, error: error instanceof Error ? error.message : String(error) });
    }
  };
  const dirs = await runsChangedSinceSync(client.trackingUri, root, syncStarted);
  for (const dir of dirs) await send(dir);
  for (const dir of dirs) {
    if ((await readSyncStates(dir))[client.trackingUri]?.pending && !result.failed.some((f) => f.dir === dir)) await send(dir);
  }
  return result;
}

/**
 * Marks the experiments of the local runs as model-training ones, so that MLflow 3's UI opens
 * them on the training runs view instead of its GenAI view (experiments Tessera creates carry
 * the tag from the start; this covers those created before).
 */
export async function markTrainingExperiments(client: MlflowClient): Promise<void> {
  const [[key, value]] = Object.entries(MLFLOW_EXPERIMENT_TAGS) as [[string, string]];
  for (const experiment of (await client.searchExperiments({ maxResults: 1000 })).items) {
    if (experiment.tags[key] === undefined) await client.setExperimentTag(experiment.experimentId, key, value);
  }
}
