import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import {
  type RunOptions,
  type ConfigPath,
  type SourceLocation,
  type TrackingConfig,
  LocalRunStore,
  findRunDir,
  readMetrics,
  createMlflowTracker,
  userAndGitTags,
  combineTrackers,
  redactingTracker,
  type ParamValue,
  type RunStatus,
  type Tracker,
} from '@tessera/core';
import type { Distribution } from './space.ts';
import type { SweepSpec } from './spec.ts';
import { trialId, type SweepState, type Trial } from './state.ts';

/** Where a sweep records its own run: the trackers a run of its base experiment would use. */
export interface SweepTrackingOptions {
  /** Root of the local run store; the sweep's run is `<runsDir>/<experiment>/<run-id>/`, beside the experiment's runs. */
  runsDir: string;
  /** The base experiment's `name`: the local store's and (by default) MLflow's experiment. */
  experiment: string;
  /** The base experiment's `tracking` section (MLflow when it or MLFLOW_TRACKING_URI names a server). */
  tracking: TrackingConfig;
  /** Locates `tracking.uri` in the experiment file, for errors. */
  locate?: (path: ConfigPath) => SourceLocation;
  /** As RunOptions.createTracker (default: MLflow when configured). */
  createTracker?: RunOptions['createTracker'];
  log?: (message: string) => void;
}

/** The tag every sweep run carries (its value: the sweep's name). */
export const SWEEP_TAG = 'tessera.sweep';

/**
 * The sweep's own run: the parent of every trial's run (MLflow nests them under it). It holds the
 * sweep file as `sweep.yaml`, the search space as params (`space.<path>`) and, as trials end, the
 * best so far: metric `best_<objective>` (step = trials ended), tags `best_trial`, `best_run_id`
 * and `best.<path>` for each parameter. Those are tags, not params, because MLflow never changes
 * a param and a resumed or extended sweep can find a better trial.
 */
export class SweepRun {
  /** The last step of the best-so-far metrics, so that a resumed sweep never logs a step twice. */
  #lastStep: number;
  /** Trials whose objective value is logged (`trial_<metric>`, step = trial number). */
  readonly #logged = new Set<string>();

  private constructor(
    readonly runId: string,
    readonly dir: string,
    private readonly tracker: Tracker,
    private readonly spec: SweepSpec,
    lastStep: number,
  ) {
    this.#lastStep = lastStep;
  }

  /** The metric that charts each finished trial's objective on the sweep's run (step = trial number). */
  get trialMetric(): string {
    return `trial_${this.spec.objective.metric}`;
  }

  /**
   * Starts the sweep's run, or continues the one `state.runId` names (a resumed sweep: the same
   * run in the local store and in MLflow, never a second one).
   */
  static async open(spec: SweepSpec, state: SweepState, options: SweepTrackingOptions): Promise<SweepRun> {
    const log = options.log ?? (() => {});
    const local = new LocalRunStore(options.runsDir);
    const extra = (options.createTracker ?? createMlflowTracker)(options.tracking, options.experiment, {
      local,
      log,
      ...(options.locate ? { locate: options.locate } : {}),
    });
    // As a run's: every recorded string passes the one redaction function (the sweep's --set may carry secrets).
    const tracker = redactingTracker(extra ? combineTrackers(local, extra) : local);
    const previous = state.runId ? await findRunDir(state.runId, options.runsDir).catch(() => undefined) : undefined;
    if (state.runId && !previous) log(`note: the sweep's run ${state.runId} is not in ${options.runsDir} (moved?); recording a new one`);
    const run = await tracker.startRun({
      experiment: options.experiment,
      runName: spec.name,
      ...(previous ? { resumeRunId: previous } : {}),
      tags: sweepTags(spec),
    });
    if (!previous) await tracker.logParams(sweepParams(spec));
    // Again on resume: the file may have changed where it does not change the trials (parallel, budget).
    // As text, so that the redaction sees it (a file artifact is copied byte for byte).
    await tracker.logArtifact('sweep.yaml', { bytes: await readFile(spec.file, 'utf8') });
    const history = previous ? await readMetrics(run.dir!) : [];
    log(`sweep run ${run.runId}${previous ? ' (continued)' : ''}: ${run.dir}`);
    // Steps of the ended-trials count, and (separately) the trials whose objective is already logged.
    const sweepRun = new SweepRun(run.runId, run.dir!, tracker, spec, history.filter((r) => 'trials_finished' in r).at(-1)?.step ?? 0);
    for (const record of history) if (sweepRun.trialMetric in record) sweepRun.#logged.add(trialId(record.step - 1));
    return sweepRun;
  }

  /** Records the best trial so far, once per newly ended trial. */
  async progress(state: SweepState, best: Trial | null): Promise<void> {
    for (const trial of state.trials) {
      if ((trial.state !== 'FINISHED' && trial.state !== 'PRUNED') || trial.finalMetric === null || this.#logged.has(trial.id)) continue;
      this.#logged.add(trial.id);
      await this.tracker.logMetrics({ [this.trialMetric]: trial.finalMetric }, trial.index + 1);
    }
    const ended = state.trials.filter((t) => t.state === 'FINISHED' || t.state === 'PRUNED' || t.state === 'FAILED');
    if (ended.length <= this.#lastStep) return;
    this.#lastStep = ended.length;
    const count = (s: Trial['state']) => ended.filter((t) => t.state === s).length;
    await this.tracker.logMetrics(
      {
        ...(best ? { [`best_${this.spec.objective.metric}`]: best.finalMetric! } : {}),
        trials_finished: count('FINISHED'),
        trials_pruned: count('PRUNED'),
        trials_failed: count('FAILED'),
      },
      ended.length,
    );
    if (best) await this.tracker.setTags(bestTags(this.spec, best));
  }

  /** Ends the run with the sweep's outcome and its trial table (`trials.json`). */
  async end(state: SweepState, best: Trial | null, status: Exclude<RunStatus, 'RUNNING'>, error?: string): Promise<void> {
    await this.progress(state, best);
    const trials = state.trials.map(({ id, state: trialState, params, finalMetric, epochs, attempts, runId, reason }) => ({
      id,
      state: trialState,
      [this.spec.objective.metric]: finalMetric,
      epochs: epochs.length,
      attempts,
      params,
      runId,
      ...(reason ? { reason } : {}),
    }));
    await this.tracker.logArtifact('trials.json', { bytes: `${JSON.stringify(trials, null, 2)}\n` });
    await this.tracker.endRun(status, error);
  }
}

/** How a sweep's outcome reads as a run status: stopped is KILLED, nothing but failures is FAILED. */
export function sweepRunStatus(state: SweepState, interrupted: boolean): { status: Exclude<RunStatus, 'RUNNING'>; error?: string } {
  if (interrupted) return { status: 'KILLED' };
  const failed = state.trials.filter((t) => t.state === 'FAILED').length;
  if (failed > 0 && failed === state.trials.length) return { status: 'FAILED', error: `every trial failed (${failed})` };
  return { status: 'FINISHED' };
}

export function sweepTags(spec: SweepSpec): Record<string, string> {
  const paths = spec.parameters.map((p) => p.path).join(', ');
  return {
    // The tags every run of the base experiment carries (runTags), so the sweep's run is found and filtered alike.
    ...userAndGitTags(dirname(spec.experiment)),
    [SWEEP_TAG]: spec.name,
    [`${SWEEP_TAG}.method`]: spec.method,
    [`${SWEEP_TAG}.metric`]: spec.objective.metric,
    [`${SWEEP_TAG}.goal`]: spec.objective.goal,
    [`${SWEEP_TAG}.max_trials`]: String(spec.maxTrials),
    [`${SWEEP_TAG}.parallel`]: String(spec.parallel),
    [`${SWEEP_TAG}.early_terminate`]: spec.earlyTerminate?.type ?? 'none',
    'mlflow.source.name': spec.file,
    'mlflow.source.type': 'LOCAL',
    'mlflow.note.content':
      (spec.description ? `${spec.description}\n\n` : '') +
      `A ${spec.method} search over ${paths} of ${basename(spec.experiment)}: ${spec.objective.goal} ${spec.objective.metric}. ` +
      'Each trial is a child run.',
  };
}

/** What defines the sweep (the parts that a resumed sweep cannot change, so MLflow's params never conflict). */
export function sweepParams(spec: SweepSpec): Record<string, ParamValue> {
  return {
    'sweep.method': spec.method,
    'sweep.metric': spec.objective.metric,
    'sweep.goal': spec.objective.goal,
    'sweep.summary': spec.objective.summary,
    'sweep.seed': spec.seed,
    'sweep.experiment': spec.experiment,
    ...(spec.baseOverrides.length > 0 ? { 'sweep.overrides': JSON.stringify(spec.baseOverrides) } : {}),
    ...Object.fromEntries(spec.parameters.map((p) => [`space.${p.path}`, describeDistribution(p.distribution)])),
  };
}

/** `[0.01, 0.003]` for values, `log_uniform(0.0001, 0.01)` for a range. */
export function describeDistribution(d: Distribution): string {
  const q = 'q' in d && d.q !== undefined ? `, q=${d.q}` : '';
  switch (d.type) {
    case 'categorical':
      return JSON.stringify(d.values) + (d.probabilities ? ` p=${JSON.stringify(d.probabilities)}` : '');
    case 'normal':
    case 'log_normal':
      return `${d.type}(${d.mu}, ${d.sigma}${q})`;
    default:
      return `${d.type}(${d.min}, ${d.max}${q})`;
  }
}

function bestTags(spec: SweepSpec, best: Trial): Record<string, string> {
  return {
    best_trial: best.id,
    ...(best.runId ? { best_run_id: best.runId } : {}),
    ...Object.fromEntries(spec.parameters.map((p) => [`best.${p.path}`, String(best.params[p.path])])),
  };
}
