import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MlflowClient } from '@tessera/mlflow';
import { writeJsonAtomic, readSyncStates, updateSyncState } from '@tessera/core';

export interface TagEndedRunOptions {
  /** Credentials for MLflow (MLFLOW_TRACKING_USERNAME/PASSWORD or _TOKEN), as the run had them. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Adds tags to a run whose process has ended (a pruned trial's `sweep.stop_reason`): in its
 * local store first (tags.json), then in every MLflow server the run was sent to (its
 * mlflow.json). A server that does not answer gets an outbox entry instead, so the run shows as
 * pending and `exp sync` sends the tags later (it compares tags.json with MLflow's).
 */
export async function tagEndedRun(runDir: string, tags: Record<string, string>, options: TagEndedRunOptions = {}): Promise<void> {
  const path = join(runDir, 'tags.json');
  const current = JSON.parse(await readFile(path, 'utf8').catch(() => '{}')) as Record<string, string>;
  await writeJsonAtomic(path, { ...current, ...tags });

  for (const [trackingUri, state] of Object.entries(await readSyncStates(runDir))) {
    if (!state.runId) continue; // never reached that server: `exp sync` will send the whole run, tags included
    // Short: the sweep waits for this, and the outbox covers a server that is down.
    const client = MlflowClient.fromEnv(options.env ?? process.env, { trackingUri, timeoutMs: 10_000, retry: { maxRetries: 1 } });
    try {
      await client.logBatch(state.runId, { tags });
    } catch (error) {
      await updateSyncState(runDir, trackingUri, (old) => ({
        ...state,
        ...old,
        pending: true,
        outbox: [...(old?.outbox ?? []), { time: new Date().toISOString(), call: `setTags ${Object.keys(tags).join(', ')}` }],
        lastError: error instanceof Error ? error.message : String(error),
      }));
    }
  }
}
