import { fingerprint } from '@tessera/core';
import { decide } from './early-stop.ts';
import type { Executor, TrialLaunch } from './executor.ts';
import { createSearcher, type Observation } from './searcher.ts';
import type { SweepSpec } from './spec.ts';
import { OBJECTIVE_TAG, RUN_NAME_TAG } from '@tessera/core';
import { toOverrides, trialRunName } from './space.ts';
import { SweepRun, sweepRunStatus, type SweepTrackingOptions } from './sweep-run.ts';
import {
  curveOf,
  loadState,
  newState,
  prepareResume,
  recordEpoch,
  saveState,
  trialId,
  type EpochMetrics,
  type SweepState,
  type Trial,
} from './state.ts';

export interface RunSweepOptions {
  executor: Executor;
  /** Where the trial table lives; an existing file is resumed. */
  statePath: string;
  /** Progress lines (trial started, pruned, finished, the best so far). */
  log?: (line: string) => void;
  /** Aborting stops the running trials (they become KILLED, rerun on resume) and returns. */
  signal?: AbortSignal;
  /** Called with the trial table each time it changes (and is saved), e.g. to redraw a live table. */
  onUpdate?: (state: SweepState, spec: SweepSpec) => void;
  /**
   * Record the sweep as a run (the parent of every trial's run) in these trackers; without it
   * the sweep keeps only its trial table.
   */
  tracking?: SweepTrackingOptions;
}

export interface SweepResult {
  state: SweepState;
  /** The finished trial with the best objective, if any finished. */
  best: Trial | null;
  interrupted: boolean;
}

/** The stop reason of trials cut short by an aborted sweep (they are KILLED, not PRUNED). */
const INTERRUPTED = 'sweep interrupted';

type Event =
  | { kind: 'started'; id: string; runId: string }
  | { kind: 'epoch'; id: string; epoch: number; metrics: EpochMetrics }
  | { kind: 'finished'; id: string; metrics: EpochMetrics }
  | { kind: 'failed'; id: string; error: string }
  | { kind: 'killed'; id: string }
  | { kind: 'abort' };

/** What decides the trials' params: a state file made with a different one cannot be resumed. */
export function sweepFingerprint(spec: SweepSpec): string {
  return fingerprint({
    experiment: spec.experiment,
    baseOverrides: spec.baseOverrides,
    method: spec.method,
    seed: spec.seed,
    parameters: spec.parameters,
    objective: spec.objective,
    bayes: spec.method === 'bayes' ? spec.bayes : undefined,
  });
}

/**
 * Runs (or resumes) a sweep: keeps up to `parallel` trials running through the executor, asks
 * the searcher for new trials as slots free up, applies the early-termination rule after every
 * reported epoch, and saves the trial table after every change.
 */
export async function runSweep(spec: SweepSpec, options: RunSweepOptions): Promise<SweepResult> {
  const { executor, statePath } = options;
  const log = options.log ?? (() => {});
  const fingerprint = sweepFingerprint(spec);
  const state = (await loadState(statePath)) ?? newState(spec.name, fingerprint);
  if (state.fingerprint !== fingerprint) {
    throw new Error(
      `${statePath} belongs to a different sweep definition (method, seed, parameters, objective or ` +
        `experiment changed); move it away to start afresh`,
    );
  }
  const save = async () => {
    await saveState(statePath, state);
    options.onUpdate?.(state, spec);
  };
  const rerun = prepareResume(state, spec.maxAttempts);
  if (state.trials.length > 0) {
    log(`resuming ${spec.name}: ${state.trials.length - rerun.length} trial(s) done, ${rerun.length} to (re)run`);
  }
  await save();

  const searcher = createSearcher({
    method: spec.method,
    parameters: spec.parameters,
    seed: spec.seed,
    goal: spec.objective.goal,
    startupTrials: spec.bayes.startupTrials,
    tpe: spec.bayes,
  });
  const limit = Math.min(spec.maxTrials, searcher.capacity);
  const byId = new Map(state.trials.map((t) => [t.id, t]));
  const running = new Set<string>();
  /** Trials we asked to stop, and why; a stopped trial's `killed` means PRUNED unless aborting. */
  const stopping = new Map<string, string>();
  /**
   * Epochs each running attempt had already been judged on: an attempt that continues a run from
   * its checkpoint reports its earlier epochs again, and they passed their rungs back then.
   */
  const judged = new Map<string, number>();

  const queue: Event[] = [];
  let wake: (() => void) | null = null;
  const push = (event: Event): void => {
    queue.push(event);
    wake?.();
  };
  const nextEvent = async (): Promise<Event> => {
    while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    return queue.shift()!;
  };
  let aborted = options.signal?.aborted ?? false;
  const onAbort = (): void => push({ kind: 'abort' });
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const observations = (): Observation[] =>
    state.trials
      .filter((t) => (t.state === 'FINISHED' || t.state === 'PRUNED') && t.finalMetric !== null)
      .map((t) => ({ params: t.params, value: t.finalMetric! }));

  /** The next trial to start: a pending one (lowest index first), else a newly suggested one. */
  const nextTrial = (): Trial | null => {
    const pending = state.trials.filter((t) => t.state === 'PENDING').sort((a, b) => a.index - b.index)[0];
    if (pending) return pending;
    const index = state.trials.length;
    if (index >= limit) return null;
    const inFlight = state.trials.filter((t) => t.state === 'RUNNING' || t.state === 'PENDING').map((t) => t.params);
    const params = searcher.suggest(index, observations(), inFlight);
    if (!params) return null;
    const trial: Trial = {
      id: trialId(index),
      index,
      params,
      overrides: [...spec.baseOverrides, ...toOverrides(params)],
      state: 'PENDING',
      attempts: 0,
      runId: null,
      epochs: [],
      finalMetric: null,
      reason: null,
    };
    state.trials.push(trial);
    byId.set(trial.id, trial);
    return trial;
  };

  const start = async (trial: Trial): Promise<void> => {
    const previousRunId = trial.runId;
    trial.state = 'RUNNING';
    trial.attempts += 1;
    trial.reason = null;
    running.add(trial.id);
    judged.set(trial.id, trial.epochs.length);
    await save();
    const launch: TrialLaunch = {
      sweep: spec.name,
      id: trial.id,
      index: trial.index,
      experiment: spec.experiment,
      params: trial.params,
      overrides: trial.overrides,
      attempt: trial.attempts,
      previousRunId,
      tags: {
        'sweep.name': spec.name,
        'sweep.trial': trial.id,
        'sweep.attempt': String(trial.attempts),
        // MLflow's run-name tag: the trial's run is named by what it tried (runExperiment reads it).
        [RUN_NAME_TAG]: trialRunName(trial.id, trial.params),
        // The objective, which the run then logs first (MLflow's parallel coordinates default to it).
        [OBJECTIVE_TAG]: spec.objective.metric,
      },
      ...(sweepRun ? { parentRunId: sweepRun.runId } : {}),
    };
    log(`${trial.id} started: ${trial.overrides.join(' ')}`);
    const id = trial.id;
    await executor.start(launch, {
      started: (runId) => push({ kind: 'started', id, runId }),
      epoch: (epoch, metrics) => push({ kind: 'epoch', id, epoch, metrics }),
      finished: (metrics) => push({ kind: 'finished', id, metrics }),
      failed: (error) => push({ kind: 'failed', id, error }),
      killed: () => push({ kind: 'killed', id }),
    });
  };

  const stop = async (trial: Trial, reason: string): Promise<void> => {
    if (stopping.has(trial.id)) return;
    stopping.set(trial.id, reason);
    await executor.stop(trial.id, reason);
  };

  const summaryValue = (trial: Trial, final: EpochMetrics): number | null => {
    const curve = curveOf(trial, spec.objective.metric);
    if (spec.objective.summary === 'best' && curve.length > 0) {
      return spec.objective.goal === 'maximize' ? Math.max(...curve) : Math.min(...curve);
    }
    const reported = final[spec.objective.metric];
    if (typeof reported === 'number' && Number.isFinite(reported)) return reported;
    return curve.length > 0 ? curve[curve.length - 1]! : null;
  };

  const end = async (trial: Trial): Promise<void> => {
    running.delete(trial.id);
    judged.delete(trial.id);
    stopping.delete(trial.id);
    await sweepRun?.progress(state, bestTrial(state, spec));
  };

  let failure: unknown;

  // Last before the loop, so that whatever starts the sweep's run also ends it.
  const sweepRun = options.tracking ? await SweepRun.open(spec, state, { log, ...options.tracking }) : null;
  if (sweepRun) {
    state.runId = sweepRun.runId;
    await save();
  }
  try {
    for (;;) {
      while (!aborted && running.size < spec.parallel) {
        const trial = nextTrial();
        if (!trial) break;
        await start(trial);
      }
      if (running.size === 0) break;

      const event = await nextEvent();
      if (event.kind === 'abort') {
        aborted = true;
        for (const id of running) await stop(byId.get(id)!, INTERRUPTED);
        continue;
      }
      const trial = byId.get(event.id);
      if (!trial || !running.has(trial.id)) continue; // a late event from a trial that already ended
      switch (event.kind) {
        case 'started':
          trial.runId = event.runId;
          break;
        case 'epoch': {
          recordEpoch(trial, event.epoch, event.metrics);
          if (spec.earlyTerminate && !stopping.has(trial.id) && !aborted) {
            const curve = { index: trial.index, values: curveOf(trial, spec.objective.metric) };
            // Only decide on epochs that reported the objective (the curve grew to this epoch).
            if (curve.values.length === event.epoch && event.epoch > (judged.get(trial.id) ?? 0)) {
              const others = state.trials
                .filter((t) => t !== trial)
                .map((t) => ({ index: t.index, values: curveOf(t, spec.objective.metric) }));
              const decision = decide(spec.earlyTerminate, spec.objective, curve, others);
              if (decision.stop) {
                log(`${trial.id} pruned: ${decision.reason}`);
                await stop(trial, decision.reason);
              }
            }
          }
          break;
        }
        case 'finished': {
          const value = summaryValue(trial, event.metrics);
          if (value === null) {
            trial.state = 'FAILED';
            trial.reason = `the run never reported the objective metric "${spec.objective.metric}"`;
          } else {
            trial.state = 'FINISHED';
            trial.finalMetric = value;
            trial.reason = null;
          }
          await end(trial);
          log(
            trial.state === 'FINISHED'
              ? `${trial.id} finished: ${spec.objective.metric} ${Number(trial.finalMetric!.toPrecision(4))}`
              : `${trial.id} failed: ${trial.reason}`,
          );
          break;
        }
        case 'failed':
          trial.state = 'FAILED';
          trial.reason = event.error;
          await end(trial);
          log(`${trial.id} failed: ${event.error}`);
          break;
        case 'killed': {
          const reason = stopping.get(trial.id) ?? 'killed outside the sweep';
          // A trial stopped by the rule is a decided outcome (PRUNED, its last value kept); one
          // stopped by an interrupt or from outside is unfinished work (KILLED, rerun on resume).
          const pruned = stopping.has(trial.id) && reason !== INTERRUPTED;
          trial.state = pruned ? 'PRUNED' : 'KILLED';
          trial.reason = reason;
          const curve = curveOf(trial, spec.objective.metric);
          trial.finalMetric = pruned && curve.length > 0 ? curve[curve.length - 1]! : null;
          await end(trial);
          if (!pruned) log(`${trial.id} killed: ${reason}`);
          break;
        }
      }
      await save();
    }
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await save();
    if (sweepRun) {
      const outcome = failure === undefined ? sweepRunStatus(state, aborted) : { status: 'FAILED' as const, error: String(failure) };
      // A tracking failure here must not hide the sweep's own error.
      const ended = sweepRun.end(state, bestTrial(state, spec), outcome.status, outcome.error);
      if (failure === undefined) await ended;
      else await ended.catch((error: unknown) => log(`the sweep's run could not be ended: ${String(error)}`));
    }
  }
  return { state, best: bestTrial(state, spec), interrupted: aborted };
}

export function bestTrial(state: SweepState, spec: Pick<SweepSpec, 'objective'>): Trial | null {
  const sign = spec.objective.goal === 'maximize' ? 1 : -1;
  let best: Trial | null = null;
  for (const t of state.trials) {
    if (t.state !== 'FINISHED' || t.finalMetric === null) continue;
    if (!best || sign * t.finalMetric > sign * best.finalMetric!) best = t;
  }
  return best;
}
