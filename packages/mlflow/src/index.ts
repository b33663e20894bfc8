// @tessera/mlflow: a typed MLflow REST client (tracking + proxied artifacts) over Node's fetch.
// It depends on nothing else in Tessera; server.ts starts a local `mlflow server`. Test helpers
// live in ./testing.ts, not here.
export { MlflowClient, CREATE_REQUEST_ID_TAG } from './client.ts';
export type {
  MlflowClientOptions,
  CreateRunOptions,
  UpdateRunOptions,
  SearchRunsOptions,
  SearchExperimentsOptions,
  LogBatchInput,
  RequestOptions,
} from './client.ts';
export { Credentials, mlflowConfigFromEnv, parseTrackingUri } from './config.ts';
export type { CredentialsInit, MlflowEnvConfig, TrackingTarget } from './config.ts';
export { findMlflowBinary, freePort, startMlflowServer } from './server.ts';
export type { MlflowServerHandle, StartMlflowServerOptions } from './server.ts';
export { MlflowError, isMlflowError } from './errors.ts';
export type { ClientErrorCode } from './errors.ts';
export { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS } from './http.ts';
export type { RetryPolicy, RetryEvent } from './http.ts';
export { MLFLOW_LIMITS, validateKey } from './validation.ts';
export { chunkLogBatch } from './batching.ts';
export type { MetricInput } from './batching.ts';
export type {
  Experiment,
  Run,
  RunInfo,
  RunStatus,
  Metric,
  Dataset,
  DatasetInput,
  FileInfo,
  Page,
  ViewType,
  LoggedModel,
  LoggedModelStatus,
  ModelVersion,
  RegisteredModel,
} from './types.ts';
