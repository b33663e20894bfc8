import { isMlflowError, MlflowClient, parseTrackingUri, type MetricInput } from '@tessera/mlflow';
import { ConfigError, type ConfigPath } from '../errors.ts';
import type { SourceLocation } from '../registry/kinds.ts';
import type { TrackingConfig } from '../schema/types.ts';
import { isSampleMetric, readRunMeta, type LocalRunStore } from './local-store.ts';
import {
  type OutboxEntry,
  bytesDigest,
  fileDigest,
  recordUploadedArtifact,
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
  /**
   * Deadlines (ms): one tracking call (default 10 s; TESSERA_MLFLOW_DEADLINE in seconds), and the
   * end-of-run wait for the calls still queued plus the catch-up (default the same). A server that
   * does not answer within them costs the run nothing but a later `exp sync`.
   */
  callDeadlineMs?: number;
  /** A client for one catch-up whose requests end when `signal` aborts (default: `client`). */
  catchUpClient?: (signal: AbortSignal) => MlflowClient;
}

/** The per-call deadline: TESSERA_MLFLOW_DEADLINE seconds, else 10 s. */
export function mlflowDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  const seconds = Number(env.TESSERA_MLFLOW_DEADLINE);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 10_000;
}

/** An MLflow error that retrying later may cure; anything else is a configuration problem. */
function isTransient(error: unknown): boolean {
  // ABORTED: our own deadline ended the call; the server may be fine later.
  return isMlflowError(error) ? error.transient || error.errorCode === 'ABORTED' : false;
}

/** Resolves after `ms` (without keeping the process alive), for races against a deadline. */
function after(ms: number): Promise<'deadline'> {
  return new Promise((resolve) => setTimeout(() => resolve('deadline'), ms).unref());
}

/** At most this many samples wait for the first epoch (a very long first epoch sends them as they come). */
const MAX_EARLY_SAMPLES = 10_000;

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
  /**
   * Every call after startRun runs here, in order, in the background: training never waits on
   * the network. Outbox notes go through it too, so mlflow.json has one writer.
   */
  #queue: Promise<void> = Promise.resolve();
  /** Ends every request in flight (a call past its deadline takes the tracker offline). */
  readonly #abort = new AbortController();
  readonly #deadlineMs: number;
  /** Calls MLflow missed after the tracker went offline, written to the outbox at the end. */
  #missed: OutboxEntry[] = [];
  /** MLflow went offline because it did not answer in time (hung), not because it refused. */
  #hung = false;
  /**
   * System and per-step samples logged before the run's first epoch metrics; sent with them
   * (see logMetrics), then undefined. The local store has them already.
   */
  #early: MetricInput[] | undefined = [];
  readonly #catchUpClient: (signal: AbortSignal) => MlflowClient;

  constructor(options: MlflowTrackerOptions) {
    this.client = options.client;
    this.experiment = options.experiment;
    this.#local = options.local;
    this.#log = options.log ?? ((message) => void process.stderr.write(`${message}\n`));
    this.#deadlineMs = options.callDeadlineMs ?? mlflowDeadlineMs();
    this.#catchUpClient = options.catchUpClient ?? (() => this.client);
  }

  /** Request options of one call: its deadline, and the tracker's abort. */
  #requestOptions(): { signal: AbortSignal } {
    return { signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#deadlineMs)]) };
  }

  /** One catch-up (syncRun) bounded by the deadline; its requests end when the deadline passes. */
  async #catchUp(dir: string): Promise<Awaited<ReturnType<typeof syncRun>>> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.#deadlineMs);
    try {
      const sync = syncRun(dir, { client: this.#catchUpClient(deadline.signal), experiment: this.experiment, lockWaitMs: this.#deadlineMs });
      const result = await Promise.race([sync, after(this.#deadlineMs)]);
      if (result === 'deadline') {
        sync.catch(() => {});
        throw new Error(`no answer within ${this.#deadlineMs / 1000} s`);
      }
      return result;
    } finally {
      clearTimeout(timer);
    }
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
        this.#runId = (await this.#catchUp(dir)).mlflowRunId;
        // Its first metric is in MLflow already.
        this.#early = undefined;
      } else {
        const experimentId = await this.client.getOrCreateExperiment(this.experiment, { tags: { ...MLFLOW_EXPERIMENT_TAGS }, ...this.#requestOptions() });
        this.#experimentId = experimentId;
        const parent = options.parentRunId
          ? ((await mlflowParentRunId(options.parentRunId, this.#local.root, trackingUri, { client: this.client, experimentId })) ?? options.parentRunId)
          : undefined;
        const run = await this.client.createRun({
          experimentId,
          runName: meta.runName,
          startTime: Date.parse(meta.startTime),
          tags: { ...options.tags, [LOCAL_RUN_ID_TAG]: meta.runId, ...(parent ? { [MLFLOW_PARENT_TAG]: parent } : {}) },
          ...this.#requestOptions(),
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
      if (!isTransient(error) && !/^no answer within/.test(describe(error))) {
        const message = `MLflow (${trackingUri}): ${describe(error)}`;
        await this.#local.endRun('FAILED', message);
        throw error;
      }
      await this.#goOffline('startRun', error);
    }
    return { runId: meta.runId, experiment: meta.experiment, dir };
  }

  logParams(params: Record<string, ParamValue>): Promise<void> {
    return this.#send('logParams', (runId, options) => this.client.logBatch(runId, { params }, options));
  }

  logMetrics(metrics: Record<string, number>, step: number): Promise<void> {
    const timestamp = Date.now();
    const batch: MetricInput[] = Object.entries(metrics).map(([key, value]) => ({ key, value, step, timestamp }));
    if (this.#early) {
      // MLflow's compare page plots a run's first metric: samples wait (with their own times) for
      // the first epoch's metrics, which come first (a sweep trial's objective first of all).
      if (batch.every((m) => isSampleMetric(m.key)) && this.#early.length < MAX_EARLY_SAMPLES) {
        this.#early.push(...batch);
        return Promise.resolve();
      }
      batch.push(...this.#early);
      this.#early = undefined;
    }
    return this.#send(`logMetrics step ${step}`, (runId, options) => this.client.logBatch(runId, { metrics: batch }, options));
  }

  setTags(tags: Record<string, string>): Promise<void> {
    return this.#send('setTags', async (runId, options) => {
      const search = this.#experimentId ? { client: this.client, experimentId: this.#experimentId } : undefined;
      const linked = await withMlflowRunIds(tags, (local) => mlflowParentRunId(local, this.#local.root, this.client.trackingUri, search));
      await this.client.logBatch(runId, { tags: linked.tags }, options);
      // A run id MLflow does not know yet (see withMlflowRunIds): pending, so `exp sync` sets it later.
      if (linked.unresolved) await this.#note([{ time: new Date().toISOString(), call: 'setTags (a linked run is not in MLflow yet)' }]);
    });
  }

  logArtifact(path: string, content: ArtifactContent): Promise<void> {
    // The bytes as they are now: the caller may reuse its buffer once this returns.
    const bytes = 'bytes' in content ? content.bytes : undefined;
    return this.#send(`logArtifact ${path}`, async (runId, options) => {
      const digest = bytes === undefined ? await fileDigest((content as { file: string }).file) : bytesDigest(bytes);
      if (bytes === undefined) await this.client.uploadFile(runId, (content as { file: string }).file, path, options);
      else await this.client.uploadArtifact(runId, path, bytes, options);
      // What MLflow has, by content: `exp sync` re-sends an artifact only when it changed.
      await recordUploadedArtifact(this.#local.runDir, this.client.trackingUri, path, digest);
    });
  }

  logInputs(datasets: DatasetInput[]): Promise<void> {
    return this.#send('logInputs', (runId, options) => this.client.logInputs(runId, datasets.map(toMlflowDataset), options));
  }

  /** Resolves once every call queued so far has been sent to MLflow (or noted in the outbox). */
  async flush(): Promise<void> {
    await this.#queue;
  }

  /** Resolves once every queued call has been sent or noted, or after `ms`; false on the deadline. */
  async #drain(ms: number): Promise<boolean> {
    return (await Promise.race([this.#queue.then(() => 'done' as const), after(ms)])) === 'done';
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
    // A run that ended before its first epoch: its samples go now.
    const early = this.#early ?? [];
    this.#early = undefined;
    if (early.length > 0) void this.#send('logMetrics (samples before the first epoch)', (runId, options) => this.client.logBatch(runId, { metrics: early }, options));
    // The local store ended first: use its end time, so that both stores agree to the millisecond.
    const meta = await readRunMeta(dir);
    void this.#send(`endRun ${status}`, async (runId, options) => {
      if (error) await this.client.setTag(runId, 'tessera.error', error.slice(0, 8000), options);
      await this.client.updateRun(runId, { status, endTime: meta.endTime ? Date.parse(meta.endTime) : Date.now() }, options);
    });
    // What is still queued gets one deadline, not one per call: a hung server costs seconds, once.
    const drained = await this.#drain(this.#deadlineMs);
    if (!drained) {
      // Past the deadline: end what is in flight; the queue then notes the rest.
      this.#abort.abort();
      await this.#drain(2000);
    }
    if (this.#missed.length > 0) {
      const missed = this.#missed;
      this.#missed = [];
      await this.#note(missed).catch(() => {});
    }
    if (!this.#offline && this.#runId) return;
    // The server may be back (it was down, not hung): one catch-up attempt now saves the user an
    // `exp sync`. A hung server is not worth another deadline, nor one that fails its health check.
    const healthy =
      drained &&
      !this.#hung &&
      (await fetch(`${this.client.trackingUri}/health`, { signal: AbortSignal.timeout(Math.min(1000, this.#deadlineMs)) }).then(
        (response) => response.ok,
        () => false,
      ));
    if (!healthy) {
      this.#log(`MLflow is still missing part of run ${this.#localRunId}; send it later with: exp sync ${this.#localRunId}`);
      return;
    }
    try {
      await this.#catchUp(dir);
      this.#log(`MLflow (${this.client.trackingUri}) is reachable again: run ${this.#localRunId} is complete there.`);
    } catch {
      this.#log(`MLflow is still missing part of run ${this.#localRunId}; send it later with: exp sync ${this.#localRunId}`);
    }
  }

  /** Queues `call`; it is sent in the background (or noted in the outbox once MLflow failed). */
  #send(call: string, send: (runId: string, options: { signal: AbortSignal }) => Promise<unknown>): Promise<void> {
    this.#queue = this.#queue.then(async () => {
      if (this.#offline || !this.#runId) {
        // In memory: mlflow.json already says `pending`; the list is written once, at the end.
        this.#missed.push({ time: new Date().toISOString(), call });
        return;
      }
      try {
        const options = this.#requestOptions();
        const sent = send(this.#runId, options);
        // The signal ends the request; the race ends a call stuck elsewhere (a file read).
        if ((await Promise.race([sent.then(() => 'sent' as const), after(this.#deadlineMs + 1000)])) === 'deadline') {
          sent.catch(() => {});
          throw new Error(`no answer within ${this.#deadlineMs / 1000} s`);
        }
      } catch (error) {
        await this.#goOffline(call, error).catch(() => {});
      }
    });
    return Promise.resolve();
  }

  async #goOffline(call: string, error: unknown): Promise<void> {
    this.#offline = describe(error);
    this.#hung = isMlflowError(error, 'ABORTED') || isMlflowError(error, 'TIMEOUT') || /^no answer within/.test(this.#offline);
    this.#log(
      `warning: MLflow (${this.client.trackingUri}) failed on ${call}: ${this.#offline}\n` +
        `Training goes on; the local run store keeps everything, and \`exp sync ${this.#localRunId}\` sends MLflow what it is missing.`,
    );
    await this.#note([{ time: new Date().toISOString(), call }], this.#offline);
  }

  /** Records in the outbox that MLflow did not get these calls. */
  async #note(calls: OutboxEntry[], lastError?: string): Promise<void> {
    const trackingUri = this.client.trackingUri;
    await updateSyncState(this.#local.runDir, trackingUri, (state) => ({
      trackingUri,
      experimentName: this.experiment,
      ...state,
      ...(this.#runId ? { runId: this.#runId } : {}),
      pending: true,
      outbox: [...(state?.outbox ?? []), ...calls],
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
  // The catch-up's requests end with its deadline (syncRun makes many calls; one signal ends them all).
  const catchUpClient = (signal: AbortSignal) =>
    MlflowClient.fromEnv(env, {
      trackingUri: uri,
      retry: { maxRetries: 0 },
      fetch: (input, init) => fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal }),
    });
  return new MlflowTracker({
    client,
    experiment: mlflowExperimentName(tracking, experiment, env),
    local: context.local,
    callDeadlineMs: mlflowDeadlineMs(env),
    catchUpClient,
    ...(context.log ? { log: context.log } : {}),
  });
}
