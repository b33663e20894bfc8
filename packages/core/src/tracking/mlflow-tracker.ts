import { isMlflowError, MlflowClient, parseTrackingUri } from '@tessera/mlflow';
import { ConfigError, type ConfigPath } from '../errors.ts';
import type { SourceLocation } from '../registry/kinds.ts';
import type { TrackingConfig } from '../schema/types.ts';
import { readRunMeta, type LocalRunStore } from './local-store.ts';
import {
  LOCAL_RUN_ID_TAG,
  MLFLOW_EXPERIMENT_TAGS,
  MLFLOW_PARENT_TAG,
  mlflowExperimentName,
  mlflowParentRunId,
  readSyncStates,
  syncRun,
  toMlflowDataset,
  updateSyncState,
  withMlflowRunIds,
} from './sync.ts';
import { ensureRunLoggedModels } from '../models/logged-model.ts';
import type { ArtifactContent, DatasetInput, ParamValue, RunInfo, SavedModel, StartRunOptions, Tracker } from './tracker.ts';

/**
 * The MLflow side of a run. It runs combined with the local run store and after it
 * (`combineTrackers(local, mlflow)`), so the local store always has everything first. When
 * MLflow fails mid-run (server down, network), the run goes on: one warning is printed, the
 * remaining calls are noted in the run's outbox (mlflow.json) instead of being sent, one last
 * attempt to catch up is made when the run ends, and `exp sync RUN` replays whatever MLflow is
 * still missing later. Only a failure that will not go away by itself (wrong credentials, a
 * deleted experiment, a bad URI) stops the run, and only before training starts.
 */
export interface MlflowTrackerOptions {
  client: MlflowClient;
  /** MLflow experiment name (created if missing). */
  experiment: string;
  /** The local store this tracker follows: its run directory holds the MLflow run id and the outbox. */
  local: LocalRunStore;
  /** Where the run's MLflow address and the one warning about an outage go (default stderr). */
  log?: (message: string) => void;
}

/** An MLflow error that retrying later may cure; anything else is a configuration problem. */
function isTransient(error: unknown): boolean {
  return isMlflowError(error) ? error.transient : false;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class MlflowTracker implements Tracker {
  readonly client: MlflowClient;
  readonly experiment: string;
  readonly #local: LocalRunStore;
  readonly #log: (message: string) => void;
  #runId: string | undefined;
  #localRunId = '';
  #experimentId: string | undefined;
  /** Set once MLflow failed: the rest of the run goes to the outbox. */
  #offline: string | undefined;

  constructor(options: MlflowTrackerOptions) {
    this.client = options.client;
    this.experiment = options.experiment;
    this.#local = options.local;
    this.#log = options.log ?? ((message) => void process.stderr.write(`${message}\n`));
  }

  /** The MLflow run id (undefined before startRun, or when MLflow could not be reached). */
  get mlflowRunId(): string | undefined {
    return this.#runId;
  }

  async startRun(options: StartRunOptions): Promise<RunInfo> {
    const dir = this.#local.runDir;
    const meta = await readRunMeta(dir);
    this.#localRunId = meta.runId;
    const trackingUri = this.client.trackingUri;
    try {
      if (options.resumeRunId) {
        // Catch MLflow up with everything before this session (creating the run if it never got there).
        this.#runId = (await syncRun(dir, { client: this.client, experiment: this.experiment })).mlflowRunId;
      } else {
        const experimentId = await this.client.getOrCreateExperiment(this.experiment, { tags: { ...MLFLOW_EXPERIMENT_TAGS } });
        this.#experimentId = experimentId;
        const parent = options.parentRunId
          ? ((await mlflowParentRunId(options.parentRunId, this.#local.root, trackingUri, { client: this.client, experimentId })) ?? options.parentRunId)
          : undefined;
        const run = await this.client.createRun({
          experimentId,
          runName: meta.runName,
          startTime: Date.parse(meta.startTime),
          tags: { ...options.tags, [LOCAL_RUN_ID_TAG]: meta.runId, ...(parent ? { [MLFLOW_PARENT_TAG]: parent } : {}) },
        });
        this.#runId = run.info.runId;
        this.#log(`MLflow run: ${trackingUri}/#/experiments/${experimentId}/runs/${run.info.runId}`);
        await updateSyncState(dir, trackingUri, () => ({
          trackingUri,
          experimentName: this.experiment,
          experimentId,
          runId: run.info.runId,
          pending: false,
          outbox: [],
        }));
      }
    } catch (error) {
      if (!isTransient(error)) {
        const message = `MLflow (${trackingUri}): ${describe(error)}`;
        await this.#local.endRun('FAILED', message);
        throw error;
      }
      await this.#goOffline('startRun', error);
    }
    return { runId: meta.runId, experiment: meta.experiment, dir };
  }

  logParams(params: Record<string, ParamValue>): Promise<void> {
    return this.#send('logParams', (runId) => this.client.logBatch(runId, { params }));
  }

  logMetrics(metrics: Record<string, number>, step: number): Promise<void> {
    const timestamp = Date.now();
    return this.#send(`logMetrics step ${step}`, (runId) =>
      this.client.logBatch(runId, { metrics: Object.entries(metrics).map(([key, value]) => ({ key, value, step, timestamp })) }),
    );
  }

  setTags(tags: Record<string, string>): Promise<void> {
    return this.#send('setTags', async (runId) => {
      const search = this.#experimentId ? { client: this.client, experimentId: this.#experimentId } : undefined;
      const linked = await withMlflowRunIds(tags, (local) => mlflowParentRunId(local, this.#local.root, this.client.trackingUri, search));
      await this.client.logBatch(runId, { tags: linked.tags });
      // A run id MLflow does not know yet (see withMlflowRunIds): pending, so `exp sync` sets it later.
      if (linked.unresolved) await this.#note('setTags (a linked run is not in MLflow yet)');
    });
  }

  logArtifact(path: string, content: ArtifactContent): Promise<void> {
    return this.#send(`logArtifact ${path}`, (runId) =>
      'file' in content ? this.client.uploadFile(runId, content.file, path) : this.client.uploadArtifact(runId, path, content.bytes),
    );
  }

  logInputs(datasets: DatasetInput[]): Promise<void> {
    return this.#send('logInputs', (runId) => this.client.logInputs(runId, datasets.map(toMlflowDataset)));
  }

  /**
   * The run's final model (and its best one, when from another epoch) as MLflow 3 LoggedModels
   * linked to the run and its metrics; run tags name them. The local store has written the
   * models' files already: they are logged from there, as `exp sync` does.
   */
  logModel(model: SavedModel): Promise<void> {
    return this.#send(`logModel ${model.name}`, async (runId) => {
      const experimentId = this.#experimentId ?? (await this.client.getRun(runId)).info.experimentId;
      const { ids } = await ensureRunLoggedModels(this.#local.runDir, { client: this.client, runId, experimentId });
      const best = ids.best && ids.best !== ids.final ? `, best epoch's model: ${ids.best}` : '';
      this.#log(`MLflow model: ${ids.final ?? ids.best}${best} (register it with: exp register ${this.#localRunId} NAME)`);
    });
  }

  async endRun(status: 'FINISHED' | 'FAILED' | 'KILLED', error?: string): Promise<void> {
    const dir = this.#local.runDir;
    if (this.#offline || !this.#runId) {
      // The server may be back: one catch-up attempt now saves the user an `exp sync`.
      try {
        await syncRun(dir, { client: this.client, experiment: this.experiment });
        this.#log(`MLflow (${this.client.trackingUri}) is reachable again: run ${this.#localRunId} is complete there.`);
      } catch {
        this.#log(`MLflow is still missing part of run ${this.#localRunId}; send it later with: exp sync ${this.#localRunId}`);
      }
      return;
    }
    // The local store ended first: use its end time, so that both stores agree to the millisecond.
    const meta = await readRunMeta(dir);
    await this.#send(`endRun ${status}`, async (runId) => {
      if (error) await this.client.setTag(runId, 'tessera.error', error.slice(0, 8000));
      await this.client.updateRun(runId, { status, endTime: meta.endTime ? Date.parse(meta.endTime) : Date.now() });
    });
  }

  async #send(call: string, send: (runId: string) => Promise<unknown>): Promise<void> {
    if (this.#offline || !this.#runId) {
      await this.#note(call);
      return;
    }
    try {
      await send(this.#runId);
    } catch (error) {
      await this.#goOffline(call, error);
    }
  }

  async #goOffline(call: string, error: unknown): Promise<void> {
    this.#offline = describe(error);
    this.#log(
      `warning: MLflow (${this.client.trackingUri}) failed on ${call}: ${this.#offline}\n` +
        `Training goes on; the local run store keeps everything, and \`exp sync ${this.#localRunId}\` sends MLflow what it is missing.`,
    );
    await this.#note(call, this.#offline);
  }

  /** Records in the outbox that MLflow did not get `call`. */
  async #note(call: string, lastError?: string): Promise<void> {
    const trackingUri = this.client.trackingUri;
    await updateSyncState(this.#local.runDir, trackingUri, (state) => ({
      trackingUri,
      experimentName: this.experiment,
      ...state,
      ...(this.#runId ? { runId: this.#runId } : {}),
      pending: true,
      outbox: [...(state?.outbox ?? []), { time: new Date().toISOString(), call }],
      ...(lastError ? { lastError } : {}),
    }));
  }
}

export interface TrackerContext {
  /** The run's local store (always recorded first). */
  local: LocalRunStore;
  log?: (message: string) => void;
  /** Locates `tracking.uri` in the experiment file, for errors. */
  locate?: (path: ConfigPath) => SourceLocation;
  env?: NodeJS.ProcessEnv;
}

const URI_PATH: ConfigPath = ['tracking', 'uri'];

/**
 * The tracker an experiment asks for besides the local store: MLflow when `tracking.uri` or
 * MLFLOW_TRACKING_URI is set (the file wins), none otherwise. Credentials come from the
 * environment only (MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN): the config is
 * recorded with every run, so a password in `tracking.uri` is refused.
 */
export function createMlflowTracker(tracking: TrackingConfig, experiment: string, context: TrackerContext): MlflowTracker | undefined {
  const env = context.env ?? process.env;
  const uri = tracking.uri || env.MLFLOW_TRACKING_URI;
  if (!uri) return undefined;
  const location = tracking.uri && context.locate ? { location: context.locate(URI_PATH) } : {};
  if (tracking.uri) {
    let target;
    try {
      target = parseTrackingUri(tracking.uri);
    } catch (error) {
      throw new ConfigError({ ...location, path: URI_PATH, message: describe(error) });
    }
    if (target.credentials) {
      throw new ConfigError({
        ...location,
        path: URI_PATH,
        expected: 'a URI without a user name or password (the config is recorded with the run; use MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)',
        found: `credentials in "${target.baseUrl}"`,
      });
    }
  }
  const client = MlflowClient.fromEnv(env, { trackingUri: uri });
  return new MlflowTracker({
    client,
    experiment: mlflowExperimentName(tracking, experiment, env),
    local: context.local,
    ...(context.log ? { log: context.log } : {}),
  });
}
