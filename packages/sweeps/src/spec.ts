import type { EarlyTerminate, Objective } from './early-stop.ts';
import type { SearchMethod } from './searcher.ts';
import type { Parameter } from './space.ts';
import type { TpeOptions } from './tpe.ts';

/** A sweep file after validation, defaults filled and paths resolved. */
export interface SweepSpec {
  name: string;
  description?: string;
  /** Absolute path of the sweep file itself (for state and error messages). */
  file: string;
  /** Absolute path of the base experiment. */
  experiment: string;
  /** `--set` arguments applied to every trial before its own (e.g. `train.epochs=3`). */
  baseOverrides: string[];
  method: SearchMethod;
  objective: Objective & {
    /** Which epoch's value is a trial's result: the last one (default) or the best one. */
    summary: 'last' | 'best';
  };
  parameters: Parameter[];
  /** Grid: defaults to the grid size. */
  maxTrials: number;
  parallel: number;
  seed: number;
  /** Attempts per trial before a failure is final. */
  maxAttempts: number;
  earlyTerminate: EarlyTerminate | null;
  bayes: { startupTrials: number } & TpeOptions;
}
