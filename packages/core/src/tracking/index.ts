// What a program uses to record and read runs. The engine's own recording steps (run-record.ts,
// provenance.ts, system-metrics.ts) stay inside core; the learning-curve plots are the optional
// entry point `@tessera/core/plots` (Vega and resvg load only there).
export {
  combineTrackers,
  redactingTracker,
  defaultRunName,
  RUN_NAME_TAG,
  OBJECTIVE_TAG,
  type Tracker,
  type StartRunOptions,
  type RunInfo,
  type RunStatus,
  type ParamValue,
  type DatasetInput,
  type ArtifactContent,
  type SavedModel,
} from './tracker.ts';
export {
  LocalRunStore,
  defaultRunsDir,
  findRunDir,
  readRunMeta,
  readRunTags,
  readMetrics,
  readSystemMetrics,
  readAllMetrics,
  repairMetrics,
  SYSTEM_METRICS_FILE,
  STEP_METRICS_FILE,
  type RunMeta,
  type MetricRecord,
  type TornLine,
  type LocalRunStoreOptions,
} from './local-store.ts';
export { acquireRunLock, currentHolder, isHolderDead, isProcessAlive, RunLock, RunLockedError, type LockHolder, type LockOptions } from './run-lock.ts';
export { MlflowTracker, createMlflowTracker, mlflowDeadlineMs, type MlflowTrackerOptions, type TrackerContext } from './mlflow-tracker.ts';
export {
  syncRun,
  runsToSync,
  listRunDirs,
  readSyncStates,
  updateSyncState,
  fileDigest,
  bytesDigest,
  SYNC_STATE_FILE,
  LOCAL_RUN_ID_TAG,
  LOCAL_PARENT_TAG,
  MLFLOW_PARENT_TAG,
  MLFLOW_EXPERIMENT_TAGS,
  RUN_ID_TAGS,
  withMlflowRunIds,
  type SyncOptions,
  type SyncResult,
  type SyncState,
  type SyncStates,
  type OutboxEntry,
} from './sync.ts';
export { listLocalRuns, formatRunsTable, queryRuns, parseRunFilter, runValue, type RunRow, type RunQuery, type RunFilter } from './run-list.ts';
export { LOCAL_UI_DIR, runsChangedSinceSync, syncChangedRuns, markTrainingExperiments, type SyncPassResult } from './local-ui.ts';
// The tags that say who ran what (a sweep's run carries them as its trials do).
export { runParams, userAndGitTags } from './run-record.ts';
