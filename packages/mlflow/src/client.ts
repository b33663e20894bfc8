/**
 * A typed client for MLflow's REST API (tracking + proxied artifacts). It knows nothing about
 * what is being tracked: callers pass experiments, runs, metrics, params, tags and files.
 */
import { randomUUID } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { ARTIFACTS_API, artifactUrlPath, normalizeArtifactPath, resolveArtifactRoot, type ArtifactLocation } from './artifacts.ts';
import { chunkLogBatch, toWireMetric, type MetricInput, type WireKeyValue } from './batching.ts';
import { Credentials, mlflowConfigFromEnv, parseTrackingUri, type CredentialsInit } from './config.ts';
import { MlflowError, isMlflowError } from './errors.ts';
import { HttpTransport, type RetryEvent, type RetryPolicy } from './http.ts';
import {
  datasetInputToWire,
  parseExperiment,
  parseMetric,
  parseRun,
  parseRunInfo,
  toKeyValues,
  type DatasetInput,
  type Experiment,
  parseLoggedModel,
  parseModelVersion,
  parseRegisteredModel,
  type FileInfo,
  type LoggedModel,
  type ModelVersion,
  type RegisteredModel,
  type Metric,
  type Page,
  type Run,
  type RunInfo,
  type RunStatus,
  type ViewType,
} from './types.ts';
import { validateKey, validateMetric, validateValue } from './validation.ts';

const API = '/api/2.0/mlflow';

/**
 * Every run this client creates carries this tag with a fresh id, so that after an ambiguous
 * failure (timeout, dropped connection, 5xx) it can search for the run instead of creating a
 * second one.
 */
export const CREATE_REQUEST_ID_TAG = 'client.create_request_id';

export interface MlflowClientOptions {
  /** `http(s)://host:port` of `mlflow server`; user info in the URI becomes basic auth. */
  trackingUri: string;
  auth?: Credentials | CredentialsInit;
  /** Per-request timeout (each attempt), default 30 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Called before each retry (e.g. to log it); never receives credentials. */
  onRetry?: (event: RetryEvent) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface CreateRunOptions {
  experimentId: string;
  runName?: string;
  /** Milliseconds since the epoch; defaults to now. */
  startTime?: number;
  tags?: Record<string, string>;
}

export interface UpdateRunOptions {
  status?: RunStatus;
  endTime?: number;
  runName?: string;
}

export interface SearchRunsOptions {
  experimentIds: string[];
  /** MLflow's search syntax, e.g. `metrics.accuracy > 0.9 and tags.model = 'x'`. */
  filter?: string;
  orderBy?: string[];
  maxResults?: number;
  pageToken?: string;
  runViewType?: ViewType;
}

export interface SearchExperimentsOptions {
  filter?: string;
  orderBy?: string[];
  maxResults?: number;
  pageToken?: string;
  viewType?: ViewType;
}

export interface LogBatchInput {
  metrics?: MetricInput[];
  params?: Record<string, string | number | boolean>;
  tags?: Record<string, string>;
}

export interface RequestOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

type Json = Record<string, unknown>;

export class MlflowClient {
  readonly #http: HttpTransport;
  readonly #artifactRoots = new Map<string, ArtifactLocation>();

  constructor(options: MlflowClientOptions) {
    const auth = options.auth === undefined || options.auth instanceof Credentials ? options.auth : new Credentials(options.auth);
    const target = parseTrackingUri(options.trackingUri, auth);
    this.#http = new HttpTransport({
      baseUrl: target.baseUrl,
      credentials: target.credentials,
      timeoutMs: options.timeoutMs,
      retry: options.retry,
      onRetry: options.onRetry,
      fetch: options.fetch,
      sleep: options.sleep,
      random: options.random,
    });
  }

  /**
   * A client configured from MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME/PASSWORD or
   * MLFLOW_TRACKING_TOKEN, MLFLOW_HTTP_REQUEST_TIMEOUT and MLFLOW_HTTP_REQUEST_MAX_RETRIES;
   * `overrides` win over the environment.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env, overrides: Partial<MlflowClientOptions> = {}): MlflowClient {
    const config = mlflowConfigFromEnv(env);
    const trackingUri = overrides.trackingUri ?? config.trackingUri;
    if (trackingUri === undefined) {
      throw new MlflowError({
        errorCode: 'INVALID_CONFIGURATION',
        message: 'MLflow configuration: MLFLOW_TRACKING_URI is not set; expected http(s)://host:port of an MLflow server',
      });
    }
    return new MlflowClient({
      ...overrides,
      trackingUri,
      auth: overrides.auth ?? config.credentials,
      timeoutMs: overrides.timeoutMs ?? config.timeoutMs,
      retry: { ...(config.maxRetries === undefined ? {} : { maxRetries: config.maxRetries }), ...overrides.retry },
    });
  }

  /** The server's base URL, without credentials. */
  get trackingUri(): string {
    return this.#http.baseUrl;
  }

  toString(): string {
    const auth = this.#http.credentials ? `, ${this.#http.credentials.describe()}` : '';
    return `MlflowClient(${this.trackingUri}${auth})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  // ---- experiments -------------------------------------------------------------------------

  /** The experiment, or undefined when none has this name. */
  async getExperimentByName(name: string, options?: RequestOptions): Promise<Experiment | undefined> {
    try {
      const body = await this.#get<Json>('/experiments/get-by-name', { experiment_name: name }, options);
      return parseExperiment(body.experiment as Json);
    } catch (error) {
      if (isMlflowError(error, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw error;
    }
  }

  async getExperiment(experimentId: string, options?: RequestOptions): Promise<Experiment> {
    const body = await this.#get<Json>('/experiments/get', { experiment_id: experimentId }, options);
    return parseExperiment(body.experiment as Json);
  }

  /** Creates an experiment and returns its id; RESOURCE_ALREADY_EXISTS if the name is taken. */
  async createExperiment(
    name: string,
    options: { artifactLocation?: string; tags?: Record<string, string> } & RequestOptions = {},
  ): Promise<string> {
    // Experiment tag values may be longer than run tags (20,000): only the keys are checked.
    for (const key of Object.keys(options.tags ?? {})) validateKey('tag', key);
    let ambiguous = false;
    try {
      const body = await this.#http.request<Json>({
        method: 'POST',
        path: `${API}/experiments/create`,
        json: { name, artifact_location: options.artifactLocation, tags: toKeyValues(options.tags) },
        retry: 'once',
        // Experiment names are unique: if an ambiguous attempt went through, the name now exists.
        recover: async () => {
          ambiguous = true;
          const existing = await this.getExperimentByName(name, options);
          return existing ? { experiment_id: existing.experimentId } : undefined;
        },
        ...requestOptions(options),
      });
      return String(body.experiment_id);
    } catch (error) {
      // A retry after an ambiguous failure can collide with our own first attempt.
      if (ambiguous && isMlflowError(error, 'RESOURCE_ALREADY_EXISTS')) {
        const existing = await this.getExperimentByName(name, options);
        if (existing) return existing.experimentId;
      }
      throw error;
    }
  }

  /**
   * The id of the experiment with this name, creating it if needed (safe against races); `tags`
   * are the new experiment's (an existing one keeps its own).
   */
  async getOrCreateExperiment(name: string, options?: { tags?: Record<string, string> } & RequestOptions): Promise<string> {
    const existing = await this.getExperimentByName(name, options);
    if (existing) {
      if (existing.lifecycleStage === 'deleted') {
        throw new MlflowError({
          errorCode: 'INVALID_PARAMETER_VALUE',
          message: `MLflow experiment "${name}" (id ${existing.experimentId}) is deleted; restore it in the UI or choose another name`,
        });
      }
      return existing.experimentId;
    }
    try {
      return await this.createExperiment(name, options);
    } catch (error) {
      if (!isMlflowError(error, 'RESOURCE_ALREADY_EXISTS')) throw error;
      const raced = await this.getExperimentByName(name, options);
      if (!raced) throw error;
      return raced.experimentId;
    }
  }

  /** Sets one tag of an experiment (e.g. `mlflow.experimentKind`). */
  async setExperimentTag(experimentId: string, key: string, value: string, options?: RequestOptions): Promise<void> {
    validateKey('tag', key);
    await this.#post('/experiments/set-experiment-tag', { experiment_id: experimentId, key, value }, options);
  }

  async searchExperiments(options: SearchExperimentsOptions & RequestOptions = {}): Promise<Page<Experiment>> {
    const body = await this.#post<Json>(
      '/experiments/search',
      {
        filter: options.filter,
        order_by: options.orderBy,
        max_results: options.maxResults ?? 1000,
        page_token: options.pageToken,
        view_type: options.viewType,
      },
      options,
    );
    return {
      items: ((body.experiments as Json[] | undefined) ?? []).map(parseExperiment),
      nextPageToken: pageToken(body),
    };
  }

  // ---- runs --------------------------------------------------------------------------------

  /** Creates a run. A retried creation never produces a second run (see CREATE_REQUEST_ID_TAG). */
  async createRun(options: CreateRunOptions & RequestOptions): Promise<Run> {
    const requestId = randomUUID();
    const tags = { ...options.tags, [CREATE_REQUEST_ID_TAG]: requestId };
    for (const [key, value] of Object.entries(tags)) {
      validateKey('tag', key);
      validateValue('tag', key, value);
    }
    const body = await this.#http.request<Json>({
      method: 'POST',
      path: `${API}/runs/create`,
      json: {
        experiment_id: options.experimentId,
        run_name: options.runName,
        start_time: options.startTime ?? Date.now(),
        tags: toKeyValues(tags),
      },
      retry: 'once',
      recover: async () => {
        const found = await this.#post<Json>(
          '/runs/search',
          {
            experiment_ids: [options.experimentId],
            filter: `tags.\`${CREATE_REQUEST_ID_TAG}\` = '${requestId}'`,
            run_view_type: 'ALL',
            max_results: 1,
          },
          options,
        );
        const run = (found.runs as Json[] | undefined)?.[0];
        return run ? { run } : undefined;
      },
      ...requestOptions(options),
    });
    return parseRun(body.run as Json);
  }

  async getRun(runId: string, options?: RequestOptions): Promise<Run> {
    const body = await this.#get<Json>('/runs/get', { run_id: runId }, options);
    return parseRun(body.run as Json);
  }

  /** Sets status, end time and/or name; returns the updated run info. */
  async updateRun(runId: string, update: UpdateRunOptions, options?: RequestOptions): Promise<RunInfo> {
    const body = await this.#post<Json>(
      '/runs/update',
      { run_id: runId, status: update.status, end_time: update.endTime, run_name: update.runName },
      options,
    );
    return parseRunInfo(body.run_info as Json);
  }

  /** Marks the run FINISHED (or another terminal status) with an end time of now. */
  async terminateRun(runId: string, status: RunStatus = 'FINISHED', options?: RequestOptions): Promise<RunInfo> {
    return this.updateRun(runId, { status, endTime: Date.now() }, options);
  }

  async searchRuns(options: SearchRunsOptions & RequestOptions): Promise<Page<Run>> {
    const body = await this.#post<Json>(
      '/runs/search',
      {
        experiment_ids: options.experimentIds,
        filter: options.filter,
        order_by: options.orderBy,
        max_results: options.maxResults ?? 1000,
        page_token: options.pageToken,
        run_view_type: options.runViewType,
      },
      options,
    );
    return { items: ((body.runs as Json[] | undefined) ?? []).map(parseRun), nextPageToken: pageToken(body) };
  }

  /** Follows page tokens to the end. */
  async searchAllRuns(options: Omit<SearchRunsOptions, 'pageToken'> & RequestOptions): Promise<Run[]> {
    const runs: Run[] = [];
    let token: string | undefined;
    do {
      const page = await this.searchRuns({ ...options, pageToken: token });
      runs.push(...page.items);
      token = page.nextPageToken;
    } while (token !== undefined);
    return runs;
  }

  async deleteRun(runId: string, options?: RequestOptions): Promise<void> {
    await this.#post('/runs/delete', { run_id: runId }, options);
  }

  async restoreRun(runId: string, options?: RequestOptions): Promise<void> {
    await this.#post('/runs/restore', { run_id: runId }, options);
  }

  // ---- logging -----------------------------------------------------------------------------

  /**
   * Logs any number of metrics, params and tags. Everything is validated first (nothing is sent
   * if any key is bad), then split into as many requests as the server's limits require.
   * Returns the number of requests sent.
   */
  async logBatch(runId: string, batch: LogBatchInput, options?: RequestOptions): Promise<number> {
    const now = Date.now();
    const metrics = (batch.metrics ?? []).map((metric, index) => {
      const wire = toWireMetric(metric, now);
      validateMetric({ ...wire, value: metric.value }, ` (metrics[${index}])`);
      return wire;
    });
    const params: WireKeyValue[] = Object.entries(batch.params ?? {}).map(([key, value]) => {
      validateKey('param', key);
      const text = String(value);
      validateValue('param', key, text);
      return { key, value: text };
    });
    const tags: WireKeyValue[] = Object.entries(batch.tags ?? {}).map(([key, value]) => {
      validateKey('tag', key);
      validateValue('tag', key, value);
      return { key, value };
    });
    const chunks = chunkLogBatch(runId, { metrics, params, tags });
    for (const chunk of chunks) await this.#post('/runs/log-batch', chunk, options);
    return chunks.length;
  }

  async logMetric(
    runId: string,
    key: string,
    value: number,
    at: { step?: number; timestamp?: number } = {},
    options?: RequestOptions,
  ): Promise<void> {
    const wire = toWireMetric({ key, value, ...at }, Date.now());
    validateMetric({ ...wire, value });
    await this.#post('/runs/log-metric', { run_id: runId, ...wire }, options);
  }

  async logParam(runId: string, key: string, value: string | number | boolean, options?: RequestOptions): Promise<void> {
    validateKey('param', key);
    const text = String(value);
    validateValue('param', key, text);
    await this.#post('/runs/log-parameter', { run_id: runId, key, value: text }, options);
  }

  async setTag(runId: string, key: string, value: string, options?: RequestOptions): Promise<void> {
    validateKey('tag', key);
    validateValue('tag', key, value);
    await this.#post('/runs/set-tag', { run_id: runId, key, value }, options);
  }

  /** Records the datasets a run used (shown in the UI's "Datasets used" column). */
  async logInputs(runId: string, datasets: DatasetInput[], options?: RequestOptions): Promise<void> {
    await this.#post('/runs/log-inputs', { run_id: runId, datasets: datasets.map(datasetInputToWire) }, options);
  }

  /** Every logged value of one metric, in the server's order, following pages to the end. */
  async getMetricHistory(runId: string, key: string, options: { pageSize?: number } & RequestOptions = {}): Promise<Metric[]> {
    const metrics: Metric[] = [];
    let token: string | undefined;
    do {
      const body = await this.#get<Json>(
        '/metrics/get-history',
        { run_id: runId, metric_key: key, max_results: options.pageSize ?? 25_000, page_token: token },
        options,
      );
      metrics.push(...((body.metrics as Json[] | undefined) ?? []).map(parseMetric));
      token = pageToken(body);
    } while (token !== undefined);
    return metrics;
  }

  // ---- artifacts ---------------------------------------------------------------------------

  /** Uploads bytes (or text, as UTF-8) to `path` under the run's artifact root. */
  async uploadArtifact(runId: string, path: string, content: Uint8Array | string, options?: RequestOptions): Promise<void> {
    await this.#putArtifact(runId, path, typeof content === 'string' ? new TextEncoder().encode(content) : content, options);
  }

  /**
   * Uploads a local file, streamed from disk (memory use does not grow with its size). A retried
   * attempt sends the whole file again. The per-attempt timeout covers the whole transfer.
   */
  async uploadFile(runId: string, localPath: string, artifactPath: string, options?: RequestOptions): Promise<void> {
    await this.#putArtifact(runId, artifactPath, await openFileAsBlob(localPath), options);
  }

  async #putArtifact(runId: string, path: string, body: Uint8Array | Blob, options?: RequestOptions): Promise<void> {
    await this.#putAt(await this.#artifactLocation(runId, options), path, body, options);
  }

  async #putAt(location: ArtifactLocation, path: string, body: Uint8Array | Blob, options?: RequestOptions): Promise<void> {
    const relative = normalizeArtifactPath(path, { allowRoot: false });
    await this.#http.request({
      method: 'PUT',
      baseUrl: location.baseUrl,
      path: artifactUrlPath(location, relative),
      body,
      retry: 'idempotent',
      ...requestOptions(options),
    });
  }

  /** The entries directly under `path` ('' = the root); paths are relative to the run's root. */
  async listArtifacts(runId: string, path = '', options?: RequestOptions): Promise<FileInfo[]> {
    return this.#listAt(await this.#artifactLocation(runId, options), path, options);
  }

  async #listAt(location: ArtifactLocation, path: string, options?: RequestOptions): Promise<FileInfo[]> {
    const relative = normalizeArtifactPath(path, { allowRoot: true });
    const body = await this.#http.request<Json>({
      method: 'GET',
      baseUrl: location.baseUrl,
      path: ARTIFACTS_API,
      query: { path: [location.root, relative].filter((part) => part !== '').join('/') },
      retry: 'idempotent',
      ...requestOptions(options),
    });
    return ((body.files as Json[] | undefined) ?? []).map((file) => ({
      path: [relative, String(file.path)].filter((part) => part !== '').join('/'),
      isDir: file.is_dir === true,
      fileSize: file.file_size === undefined ? undefined : Number(file.file_size),
    }));
  }

  /** The artifact's bytes, in memory: for small files (see downloadFile). */
  async downloadArtifact(runId: string, path: string, options?: RequestOptions): Promise<Uint8Array> {
    return this.#getArtifact<Uint8Array>(runId, path, 'bytes', options);
  }

  /**
   * Streams an artifact to `localPath` (parent folders are created). It is written to a temp file
   * beside it and renamed at the end, so `localPath` appears only complete, and a failed download
   * leaves no file behind.
   */
  async downloadFile(runId: string, path: string, localPath: string, options?: RequestOptions): Promise<void> {
    await mkdir(dirname(localPath), { recursive: true });
    const partial = join(dirname(localPath), `.${basename(localPath)}.${randomUUID().slice(0, 8)}.partial`);
    try {
      await this.#getArtifact(runId, path, { file: partial }, options);
      await rename(partial, localPath);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }

  async #getArtifact<T>(runId: string, path: string, response: 'bytes' | { file: string }, options?: RequestOptions): Promise<T> {
    return this.#getAt<T>(await this.#artifactLocation(runId, options), path, response, options);
  }

  async #getAt<T>(location: ArtifactLocation, path: string, response: 'bytes' | { file: string }, options?: RequestOptions): Promise<T> {
    const relative = normalizeArtifactPath(path, { allowRoot: false });
    return this.#http.request<T>({
      method: 'GET',
      baseUrl: location.baseUrl,
      path: artifactUrlPath(location, relative),
      retry: 'idempotent',
      response,
      ...requestOptions(options),
    });
  }

  async #artifactLocation(runId: string, options?: RequestOptions): Promise<ArtifactLocation> {
    let location = this.#artifactRoots.get(runId);
    if (!location) {
      const run = await this.getRun(runId, options);
      location = resolveArtifactRoot(run.info.artifactUri, this.#http.baseUrl, runId);
      this.#artifactRoots.set(runId, location);
    }
    return location;
  }

  // ---- logged models (MLflow 3) ------------------------------------------------------------

  /** Creates a LoggedModel (status PENDING until finalizeLoggedModel), linked to `sourceRunId`. */
  async createLoggedModel(
    options: {
      experimentId: string;
      name: string;
      modelType?: string;
      sourceRunId?: string;
      params?: Record<string, string | number | boolean>;
      tags?: Record<string, string>;
    } & RequestOptions,
  ): Promise<LoggedModel> {
    for (const [key, value] of Object.entries(options.tags ?? {})) {
      validateKey('tag', key);
      validateValue('tag', key, value);
    }
    const params = Object.fromEntries(Object.entries(options.params ?? {}).map(([key, value]) => [key, String(value)]));
    const body = await this.#http.request<Json>({
      method: 'POST',
      path: `${API}/logged-models`,
      json: {
        experiment_id: options.experimentId,
        name: options.name,
        model_type: options.modelType,
        source_run_id: options.sourceRunId,
        params: toKeyValues(params),
        tags: toKeyValues(options.tags),
      },
      retry: 'once',
      ...requestOptions(options),
    });
    return parseLoggedModel(body.model as Json);
  }

  async getLoggedModel(modelId: string, options?: RequestOptions): Promise<LoggedModel> {
    const body = await this.#get<Json>(`/logged-models/${encodeURIComponent(modelId)}`, {}, options);
    return parseLoggedModel(body.model as Json);
  }

  /** Marks the model READY (or UPLOAD_FAILED) once its artifacts are uploaded. */
  async finalizeLoggedModel(modelId: string, status: 'LOGGED_MODEL_READY' | 'LOGGED_MODEL_UPLOAD_FAILED' = 'LOGGED_MODEL_READY', options?: RequestOptions): Promise<LoggedModel> {
    const body = await this.#http.request<Json>({
      method: 'PATCH',
      path: `${API}/logged-models/${encodeURIComponent(modelId)}`,
      json: { model_id: modelId, status },
      retry: 'idempotent',
      ...requestOptions(options),
    });
    return parseLoggedModel(body.model as Json);
  }

  async setLoggedModelTags(modelId: string, tags: Record<string, string>, options?: RequestOptions): Promise<void> {
    await this.#http.request<Json>({
      method: 'PATCH',
      path: `${API}/logged-models/${encodeURIComponent(modelId)}/tags`,
      json: { tags: toKeyValues(tags) },
      retry: 'idempotent',
      ...requestOptions(options),
    });
  }

  /** LoggedModels of the experiments, e.g. filter `source_run_id = '...'` (MLflow's syntax). */
  async searchLoggedModels(options: { experimentIds: string[]; filter?: string; orderBy?: { fieldName: string; ascending?: boolean }[]; maxResults?: number } & RequestOptions): Promise<LoggedModel[]> {
    const models: LoggedModel[] = [];
    let token: string | undefined;
    do {
      const body = await this.#post<Json>(
        '/logged-models/search',
        {
          experiment_ids: options.experimentIds,
          filter: options.filter,
          order_by: options.orderBy?.map((o) => ({ field_name: o.fieldName, ascending: o.ascending ?? true })),
          max_results: options.maxResults ?? 100,
          page_token: token,
        },
        options,
      );
      models.push(...((body.models as Json[] | undefined) ?? []).map(parseLoggedModel));
      token = pageToken(body);
    } while (token && (options.maxResults === undefined || models.length < options.maxResults));
    return models;
  }

  /** Records that the run produced these models (the run's "Logged models" in the UI). */
  async logOutputs(runId: string, models: { modelId: string; step?: number }[], options?: RequestOptions): Promise<void> {
    await this.#post('/runs/outputs', { run_id: runId, models: models.map((m) => ({ model_id: m.modelId, step: m.step ?? 0 })) }, options);
  }

  /** Uploads bytes (or text) to `path` under the LoggedModel's artifact root. */
  async uploadLoggedModelArtifact(modelId: string, path: string, content: Uint8Array | string, options?: RequestOptions): Promise<void> {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    await this.#putAt(await this.#modelLocation(modelId, options), path, bytes, options);
  }

  /** Streams a LoggedModel's artifact to `localPath` (temp file + rename, as downloadFile). */
  async downloadLoggedModelFile(modelId: string, path: string, localPath: string, options?: RequestOptions): Promise<void> {
    await mkdir(dirname(localPath), { recursive: true });
    const partial = join(dirname(localPath), `.${basename(localPath)}.${randomUUID().slice(0, 8)}.partial`);
    try {
      await this.#getAt(await this.#modelLocation(modelId, options), path, { file: partial }, options);
      await rename(partial, localPath);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }

  /** The files directly under `path` of the LoggedModel's artifacts. */
  async listLoggedModelArtifacts(modelId: string, path = '', options?: RequestOptions): Promise<FileInfo[]> {
    return this.#listAt(await this.#modelLocation(modelId, options), path, options);
  }

  async #modelLocation(modelId: string, options?: RequestOptions): Promise<ArtifactLocation> {
    const key = `model:${modelId}`;
    let location = this.#artifactRoots.get(key);
    if (!location) {
      const model = await this.getLoggedModel(modelId, options);
      location = resolveArtifactRoot(model.artifactUri, this.#http.baseUrl, modelId);
      this.#artifactRoots.set(key, location);
    }
    return location;
  }

  // ---- model registry ----------------------------------------------------------------------

  /** The registered model, or undefined when none has this name. */
  async getRegisteredModel(name: string, options?: RequestOptions): Promise<RegisteredModel | undefined> {
    try {
      const body = await this.#get<Json>('/registered-models/get', { name }, options);
      return parseRegisteredModel(body.registered_model as Json);
    } catch (error) {
      if (isMlflowError(error, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw error;
    }
  }

  /** Creates the registered model unless it exists (safe against a concurrent creation). */
  async getOrCreateRegisteredModel(name: string, options: { description?: string; tags?: Record<string, string> } & RequestOptions = {}): Promise<RegisteredModel> {
    const existing = await this.getRegisteredModel(name, options);
    if (existing) return existing;
    try {
      const body = await this.#http.request<Json>({
        method: 'POST',
        path: `${API}/registered-models/create`,
        json: { name, description: options.description, tags: toKeyValues(options.tags) },
        retry: 'once',
        recover: async () => {
          const found = await this.getRegisteredModel(name, options);
          return found ? { registered_model: { name } } : undefined;
        },
        ...requestOptions(options),
      });
      return parseRegisteredModel(body.registered_model as Json);
    } catch (error) {
      if (!isMlflowError(error, 'RESOURCE_ALREADY_EXISTS')) throw error;
      const raced = await this.getRegisteredModel(name, options);
      if (!raced) throw error;
      return raced;
    }
  }

  /** A new version of a registered model; `source` is e.g. `models:/<model_id>` or `runs:/<run>/model`. */
  async createModelVersion(
    options: { name: string; source: string; runId?: string; modelId?: string; tags?: Record<string, string>; description?: string } & RequestOptions,
  ): Promise<ModelVersion> {
    for (const [key, value] of Object.entries(options.tags ?? {})) {
      validateKey('tag', key);
      validateValue('tag', key, value);
    }
    const body = await this.#http.request<Json>({
      method: 'POST',
      path: `${API}/model-versions/create`,
      json: {
        name: options.name,
        source: options.source,
        run_id: options.runId,
        model_id: options.modelId,
        tags: toKeyValues(options.tags),
        description: options.description,
      },
      retry: 'once',
      ...requestOptions(options),
    });
    return parseModelVersion(body.model_version as Json);
  }

  async getModelVersion(name: string, version: string, options?: RequestOptions): Promise<ModelVersion> {
    const body = await this.#get<Json>('/model-versions/get', { name, version }, options);
    return parseModelVersion(body.model_version as Json);
  }

  async getModelVersionByAlias(name: string, alias: string, options?: RequestOptions): Promise<ModelVersion> {
    const body = await this.#get<Json>('/registered-models/alias', { name, alias }, options);
    return parseModelVersion(body.model_version as Json);
  }

  async setRegisteredModelAlias(name: string, alias: string, version: string, options?: RequestOptions): Promise<void> {
    await this.#post('/registered-models/alias', { name, alias, version }, options);
  }

  // ---- plumbing ----------------------------------------------------------------------------

  #get<T>(endpoint: string, query: Record<string, string | number | undefined>, options?: RequestOptions): Promise<T> {
    return this.#http.request<T>({ method: 'GET', path: `${API}${endpoint}`, query, retry: 'idempotent', ...requestOptions(options) });
  }

  /** POSTs here are all reads or idempotent writes; creations call the transport themselves. */
  #post<T = Json>(endpoint: string, json: unknown, options?: RequestOptions): Promise<T> {
    return this.#http.request<T>({ method: 'POST', path: `${API}${endpoint}`, json, retry: 'idempotent', ...requestOptions(options) });
  }
}

/** A Blob backed by the file, read only as it is sent; errors name the path (openAsBlob's do not). */
async function openFileAsBlob(localPath: string): Promise<Blob> {
  const info = await stat(localPath);
  if (!info.isFile()) throw new Error(`cannot upload ${localPath}: not a file`);
  try {
    return await openAsBlob(localPath);
  } catch (cause) {
    throw new Error(`cannot upload ${localPath}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

function requestOptions(options: RequestOptions | undefined): RequestOptions {
  return { timeoutMs: options?.timeoutMs, signal: options?.signal };
}

function pageToken(body: Json): string | undefined {
  const token = body.next_page_token;
  return typeof token === 'string' && token !== '' ? token : undefined;
}
