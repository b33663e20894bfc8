import type { Params } from './space.ts';
import type { EpochMetrics } from './state.ts';

/**
 * How trials get run. The sweep runner only ever talks to this interface, so a local process
 * pool (`exp run` child processes) and a queue-backed executor (BullMQ workers on other hosts)
 * are interchangeable: each turns `start` into a run somewhere and reports back through the sink.
 */
export interface Executor {
  /**
   * Begins running a trial. Must return promptly (the run proceeds in the background) and report
   * through `sink`: `started` once the tracked run exists, `epoch` after every epoch, and exactly
   * one of `finished`, `failed` or `killed` at the end.
   */
  start(trial: TrialLaunch, sink: TrialSink): void | Promise<void>;
  /**
   * Asks a running trial to stop (early termination or an interrupted sweep). The executor ends
   * the run as KILLED with `reason` recorded as its `sweep.stop_reason` tag, then calls
   * `sink.killed()`. Stopping a trial that already ended is a no-op.
   */
  stop(trialId: string, reason: string): void | Promise<void>;
  /** Releases workers, connections, child processes. */
  close?(): Promise<void>;
}

/** Everything an executor needs to run one trial, JSON-serialisable (it may cross a queue). */
export interface TrialLaunch {
  sweep: string;
  id: string;
  index: number;
  /** Absolute path of the base experiment file. */
  experiment: string;
  params: Params;
  /** `--set` arguments, e.g. `train.optimizer.learning_rate=0.0012`. */
  overrides: string[];
  /** 1 for the first attempt. */
  attempt: number;
  /** The run of an earlier attempt, which an executor may continue from its checkpoint. */
  previousRunId: string | null;
  /** Tags the run should carry from its start: `sweep.name`, `sweep.trial`, `sweep.attempt`, `sweep.metric` (the objective), its name. */
  tags: Record<string, string>;
  /**
   * The local run id of the sweep's own run, when the sweep is tracked: the trial's run is its
   * child (`exp run --parent-run`; MLflow finds the parent by its `tessera.run_id` tag).
   */
  parentRunId?: string;
}

export interface TrialSink {
  started(runId: string): void;
  epoch(epoch: number, metrics: EpochMetrics): void;
  /** `metrics`: the run's final summary (e.g. the test metrics); may be empty. */
  finished(metrics: EpochMetrics): void;
  failed(error: string): void;
  killed(): void;
}
