/**
 * MLflow's entities as this client returns them (camelCase, tags and params as records,
 * metric values decoded), and the conversions from the REST API's snake_case JSON.
 */
import { decodeInt, decodeMetricValue } from './values.ts';

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: string;
  creationTime: number | undefined;
  lastUpdateTime: number | undefined;
  tags: Record<string, string>;
}

export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface RunInfo {
  runId: string;
  experimentId: string;
  runName: string;
  userId: string;
  status: RunStatus;
  startTime: number | undefined;
  endTime: number | undefined;
  artifactUri: string;
  lifecycleStage: string;
}

export interface Dataset {
  name: string;
  /** A short hash of the content (MLflow allows at most 36 characters). */
  digest: string;
  /** e.g. "local", "http", "code". */
  sourceType: string;
  /** JSON text describing where the data came from, e.g. `{"uri": "..."}`. */
  source: string;
  /** JSON text, optional. */
  schema?: string;
  /** JSON text, optional (e.g. `{"num_rows": 50000}`). */
  profile?: string;
}

export interface DatasetInput {
  dataset: Dataset;
  /** e.g. `{ 'mlflow.data.context': 'train' }`. */
  tags?: Record<string, string>;
}

export interface Run {
  info: RunInfo;
  data: { metrics: Metric[]; params: Record<string, string>; tags: Record<string, string> };
  inputs: { datasetInputs: DatasetInput[] };
}

export interface FileInfo {
  /** Relative to the run's artifact root, '/'-separated. */
  path: string;
  isDir: boolean;
  fileSize: number | undefined;
}

export interface Page<T> {
  items: T[];
  /** Pass back to get the next page; undefined on the last page. */
  nextPageToken: string | undefined;
}

type Json = Record<string, unknown>;
type KeyValue = { key?: unknown; value?: unknown };

export function toRecord(entries: unknown): Record<string, string> {
  const record: Record<string, string> = {};
  for (const entry of (entries as KeyValue[] | undefined) ?? []) {
    record[String(entry.key)] = String(entry.value ?? '');
  }
  return record;
}

export function toKeyValues(record: Record<string, string> | undefined): { key: string; value: string }[] {
  return Object.entries(record ?? {}).map(([key, value]) => ({ key, value }));
}

export function parseExperiment(json: Json): Experiment {
  return {
    experimentId: String(json.experiment_id),
    name: String(json.name),
    artifactLocation: String(json.artifact_location ?? ''),
    lifecycleStage: String(json.lifecycle_stage ?? 'active'),
    creationTime: decodeInt(json.creation_time),
    lastUpdateTime: decodeInt(json.last_update_time),
    tags: toRecord(json.tags),
  };
}

export function parseMetric(json: Json): Metric {
  return {
    key: String(json.key),
    value: decodeMetricValue(json.value),
    timestamp: decodeInt(json.timestamp) ?? 0,
    step: decodeInt(json.step) ?? 0,
  };
}

export function parseRunInfo(json: Json): RunInfo {
  return {
    runId: String(json.run_id ?? json.run_uuid),
    experimentId: String(json.experiment_id),
    runName: String(json.run_name ?? ''),
    userId: String(json.user_id ?? ''),
    status: String(json.status ?? 'RUNNING') as RunStatus,
    startTime: decodeInt(json.start_time),
    endTime: decodeInt(json.end_time),
    artifactUri: String(json.artifact_uri ?? ''),
    lifecycleStage: String(json.lifecycle_stage ?? 'active'),
  };
}

export function parseRun(json: Json): Run {
  const data = (json.data ?? {}) as Json;
  const inputs = (json.inputs ?? {}) as Json;
  return {
    info: parseRunInfo(json.info as Json),
    data: {
      metrics: ((data.metrics as Json[] | undefined) ?? []).map(parseMetric),
      params: toRecord(data.params),
      tags: toRecord(data.tags),
    },
    inputs: {
      datasetInputs: ((inputs.dataset_inputs as Json[] | undefined) ?? []).map((input) => {
        const dataset = (input.dataset ?? {}) as Json;
        return {
          dataset: {
            name: String(dataset.name),
            digest: String(dataset.digest),
            sourceType: String(dataset.source_type),
            source: String(dataset.source),
            ...(dataset.schema === undefined ? {} : { schema: String(dataset.schema) }),
            ...(dataset.profile === undefined ? {} : { profile: String(dataset.profile) }),
          },
          tags: toRecord(input.tags),
        };
      }),
    },
  };
}

export function datasetInputToWire(input: DatasetInput): Json {
  const { dataset } = input;
  return {
    tags: toKeyValues(input.tags),
    dataset: {
      name: dataset.name,
      digest: dataset.digest,
      source_type: dataset.sourceType,
      source: dataset.source,
      ...(dataset.schema === undefined ? {} : { schema: dataset.schema }),
      ...(dataset.profile === undefined ? {} : { profile: dataset.profile }),
    },
  };
}

/** MLflow 3's LoggedModel: a model with its own artifacts, linked to the run that produced it. */
export type LoggedModelStatus = 'LOGGED_MODEL_PENDING' | 'LOGGED_MODEL_READY' | 'LOGGED_MODEL_UPLOAD_FAILED' | 'LOGGED_MODEL_STATUS_UNSPECIFIED';

export interface LoggedModel {
  modelId: string;
  experimentId: string;
  name: string;
  artifactUri: string;
  status: LoggedModelStatus;
  modelType: string;
  sourceRunId: string | undefined;
  creationTime: number | undefined;
  tags: Record<string, string>;
  params: Record<string, string>;
  metrics: Metric[];
}

export interface ModelVersion {
  name: string;
  version: string;
  source: string;
  runId: string | undefined;
  modelId: string | undefined;
  status: string;
  aliases: string[];
  tags: Record<string, string>;
  creationTime: number | undefined;
}

export interface RegisteredModel {
  name: string;
  description: string;
  tags: Record<string, string>;
  aliases: Record<string, string>;
}

export function parseLoggedModel(json: Json): LoggedModel {
  const info = (json.info ?? {}) as Json;
  const data = (json.data ?? {}) as Json;
  return {
    modelId: String(info.model_id),
    experimentId: String(info.experiment_id),
    name: String(info.name ?? ''),
    artifactUri: String(info.artifact_uri ?? ''),
    status: String(info.status ?? 'LOGGED_MODEL_STATUS_UNSPECIFIED') as LoggedModelStatus,
    modelType: String(info.model_type ?? ''),
    sourceRunId: info.source_run_id === undefined ? undefined : String(info.source_run_id),
    creationTime: decodeInt(info.creation_timestamp_ms),
    tags: toRecord(info.tags),
    params: toRecord(data.params),
    metrics: ((data.metrics as Json[] | undefined) ?? []).map(parseMetric),
  };
}

export function parseModelVersion(json: Json): ModelVersion {
  return {
    name: String(json.name),
    version: String(json.version),
    source: String(json.source ?? ''),
    runId: json.run_id ? String(json.run_id) : undefined,
    modelId: json.model_id ? String(json.model_id) : undefined,
    status: String(json.status ?? ''),
    aliases: ((json.aliases as unknown[] | undefined) ?? []).map(String),
    tags: toRecord(json.tags),
    creationTime: decodeInt(json.creation_timestamp),
  };
}

export function parseRegisteredModel(json: Json): RegisteredModel {
  const aliases: Record<string, string> = {};
  for (const entry of (json.aliases as { alias: string; version: string }[] | undefined) ?? []) aliases[entry.alias] = String(entry.version);
  return { name: String(json.name), description: String(json.description ?? ''), tags: toRecord(json.tags), aliases };
}
