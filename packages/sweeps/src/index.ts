export { loadSweep, type LoadedSweep, type LoadSweepOptions } from './load.ts';
export { sweepSchema } from './schema.ts';
export type { SweepSpec } from './spec.ts';
export { runSweep, bestTrial, sweepFingerprint, type RunSweepOptions, type SweepResult } from './runner.ts';
export type { Executor, TrialLaunch, TrialSink } from './executor.ts';
export { LocalProcessExecutor, type LocalExecutorOptions } from './local-executor.ts';
export { createSearcher, type Searcher, type SearcherOptions, type SearchMethod, type Goal, type Observation } from './searcher.ts';
export { gridPoint, gridSize } from './grid.ts';
export { sample, sampleParams, toOverrides, trialRunName, quantize, type Distribution, type Parameter, type ParamValue as SweepParamValue, type Params } from './space.ts';
export { tpeSuggest, TPE_DEFAULTS, type TpeOptions } from './tpe.ts';
export { decide as earlyTerminationDecision, rungs, defaultBrackets, type EarlyTerminate, type Curve, type Decision, type Objective } from './early-stop.ts';
export {
  loadState,
  saveState,
  prepareResume,
  recordEpoch,
  curveOf,
  trialId,
  TERMINAL_STATES,
  type SweepState,
  type Trial,
  type TrialState,
  type EpochMetrics,
} from './state.ts';
export { runSweepFile, planTrials, formatSweepTable, reproduceCommand, sweepDir, sweepTracking, type SweepFileOptions } from './launch.ts';
export { SweepRun, SWEEP_TAG, sweepParams, sweepTags, sweepRunStatus, describeDistribution, type SweepTrackingOptions } from './sweep-run.ts';
export { tagEndedRun, type TagEndedRunOptions } from './run-tags.ts';
export { planMultirun, splitSweepValues, type Multirun, type MultirunOptions } from './multirun.ts';
