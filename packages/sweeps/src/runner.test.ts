import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Executor, TrialLaunch, TrialSink } from './executor.ts';
import { bestTrial, runSweep, sweepFingerprint } from './runner.ts';
import { createSearcher } from './searcher.ts';
import type { SweepSpec } from './spec.ts';
import { toOverrides, type Params } from './space.ts';
import { loadState, newState, saveState, trialId, type SweepState, type Trial, type TrialState } from './state.ts';
import { TPE_DEFAULTS } from './tpe.ts';

/** Every suggest call the runner makes, with the in-flight params it passed (the constant liar). */
const suggestCalls = vi.hoisted(() => [] as { index: number; inFlight: unknown[] }[]);
vi.mock('./searcher.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('./searcher.ts')>();
  return {
    ...original,
    createSearcher: (options: Parameters<typeof original.createSearcher>[0]) => {
      const searcher = original.createSearcher(options);
      return {
        ...searcher,
        suggest: (index: number, observations: Parameters<typeof searcher.suggest>[1], inFlight: Parameters<typeof searcher.suggest>[2] = []) => {
          suggestCalls.push({ index, inFlight: [...inFlight] });
          return searcher.suggest(index, observations, inFlight);
        },
      };
    },
  };
});

/** A synthetic learning curve: accuracy approaches a ceiling set by the params. */
function accuracyAt(params: Params, epoch: number): number {
  const lr = params['train.optimizer.learning_rate'] as number;
  const ceiling = 0.9 - 0.1 * Math.abs(Math.log10(lr) + 3);
  return ceiling * (1 - 0.5 ** epoch);
}

/**
 * Runs trials in memory, one epoch per macrotask, so several trials interleave as real
 * asynchronous workers would. Trials whose params say so fail at epoch 2.
 */
class FakeExecutor implements Executor {
  readonly started: string[] = [];
  readonly stops: { id: string; reason: string }[] = [];
  private readonly live = new Map<string, { sink: TrialSink; stopped: boolean }>();

  constructor(
    private readonly epochs: number,
    private readonly onEpoch?: (id: string, epoch: number) => void,
    /** While true, running trials make no progress (a long epoch); they can still be stopped. */
    private readonly frozen: (id: string, epoch: number) => boolean = () => false,
  ) {}

  start(trial: TrialLaunch, sink: TrialSink): void {
    this.started.push(trial.id);
    const run = { sink, stopped: false };
    this.live.set(trial.id, run);
    sink.started(`run-${trial.id}-${trial.attempt}`);
    const step = (epoch: number): void => {
      if (run.stopped) return;
      if (this.frozen(trial.id, epoch)) {
        setTimeout(() => step(epoch), 1);
        return;
      }
      if (epoch > this.epochs) {
        this.live.delete(trial.id);
        sink.finished({ test_accuracy: accuracyAt(trial.params, this.epochs) });
        return;
      }
      if (trial.params['fail'] === true && epoch === 2) {
        this.live.delete(trial.id);
        sink.failed('loss became NaN at step 7');
        return;
      }
      sink.epoch(epoch, { val_accuracy: accuracyAt(trial.params, epoch), val_loss: 1 / epoch });
      this.onEpoch?.(trial.id, epoch);
      setTimeout(() => step(epoch + 1), 0);
    };
    setTimeout(() => step(1), 0);
  }

  stop(id: string, reason: string): void {
    const run = this.live.get(id);
    if (!run) return;
    this.stops.push({ id, reason });
    run.stopped = true;
    this.live.delete(id);
    setTimeout(() => run.sink.killed(), 0);
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-sweep-'));
  suggestCalls.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function spec(overrides: Partial<SweepSpec> = {}): SweepSpec {
  return {
    name: 'toy',
    file: '/sweeps/toy.yaml',
    experiment: '/experiments/toy.yaml',
    baseOverrides: [],
    method: 'random',
    objective: { metric: 'val_accuracy', goal: 'maximize', summary: 'last' },
    parameters: [{ path: 'train.optimizer.learning_rate', distribution: { type: 'log_uniform', min: 1e-5, max: 1e-1 } }],
    maxTrials: 6,
    parallel: 2,
    seed: 3,
    maxAttempts: 1,
    earlyTerminate: null,
    bayes: { startupTrials: 10, ...TPE_DEFAULTS },
    ...overrides,
  };
}

describe('runSweep', () => {
  it('runs every trial through the executor, keeps the table on disk and reports the best', async () => {
    const statePath = join(dir, 'state.json');
    const executor = new FakeExecutor(3);
    const s = spec();
    // onUpdate sees the table as it changes (a live display), ending with the saved one.
    const finished: number[] = [];
    const result = await runSweep(s, {
      executor,
      statePath,
      onUpdate: (state, seen) => {
        expect(seen).toBe(s);
        finished.push(state.trials.filter((t) => t.state === 'FINISHED').length);
      },
    });
    expect(finished.at(-1)).toBe(6);
    expect(finished).toEqual([...finished].sort((a, b) => a - b));
    expect(new Set(finished).size).toBe(7); // 0 .. 6 finished trials, each seen
    expect(executor.started).toEqual(['trial-000', 'trial-001', 'trial-002', 'trial-003', 'trial-004', 'trial-005']);
    const saved = (await loadState(statePath))!;
    expect(saved).toEqual(result.state);
    const random = createSearcher({ method: 'random', parameters: s.parameters, seed: 3, goal: 'maximize' });
    saved.trials.forEach((t, i) => {
      expect(t.state).toBe('FINISHED');
      expect(t.params).toEqual(random.suggest(i, []));
      expect(t.overrides).toEqual(toOverrides(t.params));
      expect(t.runId).toBe(`run-${t.id}-1`);
      expect(t.epochs.map((e) => e.val_accuracy)).toEqual([1, 2, 3].map((e) => accuracyAt(t.params, e)));
      expect(t.finalMetric).toBe(accuracyAt(t.params, 3));
    });
    const best = saved.trials.reduce((a, b) => (b.finalMetric! > a.finalMetric! ? b : a));
    expect(result.best?.id).toBe(best.id);
    // Only the state file remains: every temp file was renamed into place.
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('puts the sweep-wide overrides before each trial\'s own; they are part of the sweep\'s identity', async () => {
    const statePath = join(dir, 's.json');
    const s = spec({ maxTrials: 2, baseOverrides: ['train.epochs=3'] });
    const executor = new FakeExecutor(1);
    const launched: string[][] = [];
    const start = executor.start.bind(executor);
    executor.start = (t, sink) => (launched.push(t.overrides), start(t, sink));
    const { state } = await runSweep(s, { executor, statePath });
    expect(launched).toEqual(state.trials.map((t) => ['train.epochs=3', ...toOverrides(t.params)]));
    expect(state.trials.map((t) => t.overrides)).toEqual(launched);
    await expect(runSweep(spec({ maxTrials: 2 }), { executor: new FakeExecutor(1), statePath })).rejects.toThrow(/different sweep definition/);
  });

  it('keeps secrets in the sweep-wide overrides out of the state file, and still launches (and relaunches) trials with them', async () => {
    const statePath = join(dir, 'secret.json');
    const s = spec({ maxTrials: 2, baseOverrides: ['vars.api_token=S3CRET-1', 'description=https://u:S3CRET-2@h/?token=S3CRET-3'] });
    const launched: string[][] = [];
    const executor = new FakeExecutor(1);
    const start = executor.start.bind(executor);
    executor.start = (t, sink) => (launched.push(t.overrides), start(t, sink));
    const { state } = await runSweep(s, { executor, statePath });
    expect(launched).toEqual(state.trials.map((t) => [...s.baseOverrides, ...toOverrides(t.params)]));
    expect(readFileSync(statePath, 'utf8')).not.toMatch(/S3CRET/);
    expect((await loadState(statePath))!.trials[0]!.overrides.slice(0, 2)).toEqual(['vars.api_token=****', 'description=https://u:****@h/?token=****']);
    // A resumed trial gets the real values again (from the sweep command's --set), not the masked ones.
    const saved = (await loadState(statePath))!;
    saved.trials[1]!.state = 'KILLED';
    await saveState(statePath, saved);
    const relaunched: string[][] = [];
    const again = new FakeExecutor(1);
    const startAgain = again.start.bind(again);
    again.start = (t, sink) => (relaunched.push(t.overrides), startAgain(t, sink));
    await runSweep(s, { executor: again, statePath });
    expect(again.started).toEqual(['trial-001']);
    expect(relaunched).toEqual([[...s.baseOverrides, ...toOverrides(saved.trials[1]!.params)]]);
  });

  it('never runs more than `parallel` trials at once', async () => {
    let live = 0;
    let peak = 0;
    // Nothing progresses until three trials run, so the peak cannot depend on timing.
    const executor: FakeExecutor = new FakeExecutor(2, undefined, () => executor.started.length < 3);
    const start = executor.start.bind(executor);
    executor.start = (trial, sink) => {
      live++;
      peak = Math.max(peak, live);
      const done = () => live--;
      start(trial, { ...sink, finished: (m) => (done(), sink.finished(m)), failed: (e) => (done(), sink.failed(e)), killed: () => (done(), sink.killed()) });
    };
    await runSweep(spec({ parallel: 3, maxTrials: 7 }), { executor, statePath: join(dir, 's.json') });
    expect(peak).toBe(3);
  });

  it('tells the searcher which trials are still running when it asks for the next (TPE\'s constant liar)', async () => {
    // Nothing progresses until three trials run: trials 1 and 2 are suggested while 0 (and 1) run.
    const executor: FakeExecutor = new FakeExecutor(2, undefined, () => executor.started.length < 3);
    const { state } = await runSweep(spec({ method: 'bayes', parallel: 3, maxTrials: 3 }), { executor, statePath: join(dir, 's.json') });
    const params = state.trials.map((t) => t.params);
    expect(suggestCalls).toEqual([
      { index: 0, inFlight: [] },
      { index: 1, inFlight: [params[0]] },
      { index: 2, inFlight: [params[0], params[1]] },
    ]);
  });

  it('enumerates a grid once and stops when it is exhausted', async () => {
    const executor = new FakeExecutor(1);
    const s = spec({
      method: 'grid',
      maxTrials: 100,
      parameters: [
        { path: 'train.optimizer.learning_rate', distribution: { type: 'categorical', values: [1e-3, 1e-2] } },
        { path: 'model.vars.embedding_dim', distribution: { type: 'categorical', values: [128, 256] } },
      ],
    });
    const { state } = await runSweep(s, { executor, statePath: join(dir, 's.json') });
    expect(state.trials.map((t) => t.overrides)).toEqual([
      ['train.optimizer.learning_rate=0.001', 'model.vars.embedding_dim=128'],
      ['train.optimizer.learning_rate=0.001', 'model.vars.embedding_dim=256'],
      ['train.optimizer.learning_rate=0.01', 'model.vars.embedding_dim=128'],
      ['train.optimizer.learning_rate=0.01', 'model.vars.embedding_dim=256'],
    ]);
  });

  it('prunes with the early-termination rule: the executor is told why, the trial is PRUNED', async () => {
    // Lockstep: a trial starts epoch e only once the table on disk holds its epoch e - 1, which the
    // runner saves after deciding on it, so every decision lands before the next epoch.
    const statePath = join(dir, 's.json');
    const recorded = (id: string): number => {
      try {
        return (JSON.parse(readFileSync(statePath, 'utf8')) as SweepState).trials.find((t) => t.id === id)?.epochs.length ?? 0;
      } catch {
        return 0; // caught between the temp file and the rename
      }
    };
    const executor = new FakeExecutor(9, undefined, (id, epoch) => recorded(id) < epoch - 1);
    const s = spec({
      parallel: 1,
      maxTrials: 4,
      method: 'grid',
      parameters: [{ path: 'train.optimizer.learning_rate', distribution: { type: 'categorical', values: [1e-3, 1e-1, 1e-2, 1e-5] } }],
      earlyTerminate: { type: 'asha', gracePeriod: 1, reductionFactor: 3, maxEpochs: 9 },
    });
    const { state, best } = await runSweep(s, { executor, statePath });
    // One at a time: 1e-3 is best at every rung; 1e-1 (ceiling 0.7) loses at epoch 1 to it;
    // 1e-2 (0.8) is second of 3 at epoch 1 (top 1 continue) and stops; 1e-5 (0.7) stops too.
    expect(state.trials.map((t) => t.state)).toEqual(['FINISHED', 'PRUNED', 'PRUNED', 'PRUNED']);
    expect(executor.stops.map((s) => s.id)).toEqual(['trial-001', 'trial-002', 'trial-003']);
    expect(state.trials[1]!.reason).toBe('asha: val_accuracy 0.3500 at rung 0 (epoch 1) ranks 2 of 2, top 1 continue');
    expect(executor.stops[0]!.reason).toBe(state.trials[1]!.reason);
    expect(state.trials.map((t) => t.epochs.length)).toEqual([9, 1, 1, 1]);
    expect(state.trials[1]!.finalMetric).toBeCloseTo(0.35, 12);
    expect(best?.id).toBe('trial-000');
  });

  it('records failures with their message and carries on', async () => {
    const executor = new FakeExecutor(3);
    const s = spec({
      method: 'grid',
      parallel: 2,
      parameters: [
        { path: 'train.optimizer.learning_rate', distribution: { type: 'categorical', values: [1e-3] } },
        { path: 'fail', distribution: { type: 'categorical', values: [false, true, false] } },
      ],
    });
    const { state } = await runSweep(s, { executor, statePath: join(dir, 's.json') });
    expect(state.trials.map((t) => t.state)).toEqual(['FINISHED', 'FAILED', 'FINISHED']);
    expect(state.trials[1]!.reason).toBe('loss became NaN at step 7');
  });

  it('on abort stops the running trials as KILLED; resuming reruns only them', async () => {
    const statePath = join(dir, 's.json');
    const controller = new AbortController();
    const first: FakeExecutor = new FakeExecutor(4, (id, epoch) => {
      if (id === 'trial-003' && epoch === 1) controller.abort();
    }, (id) => controller.signal.aborted || (id === 'trial-002' && !first.started.includes('trial-003')));
    const s = spec({ parallel: 2, maxTrials: 5 });
    const interrupted = await runSweep(s, { executor: first, statePath, signal: controller.signal });
    expect(interrupted.interrupted).toBe(true);
    const states = interrupted.state.trials.map((t) => t.state);
    expect(states).toEqual(['FINISHED', 'FINISHED', 'KILLED', 'KILLED']);
    expect(first.stops.every((x) => x.reason === 'sweep interrupted')).toBe(true);
    const killed = interrupted.state.trials.filter((t) => t.state === 'KILLED').map((t) => t.id);
    const done = interrupted.state.trials.filter((t) => t.state === 'FINISHED').map((t) => t.id);

    const second = new FakeExecutor(4);
    const resumed = await runSweep(s, { executor: second, statePath });
    const fresh = Array.from({ length: 5 }, (_, i) => trialId(i)).filter((id) => !killed.includes(id) && !done.includes(id));
    expect(second.started).toEqual([...killed, ...fresh]);
    expect(resumed.state.trials.every((t) => t.state === 'FINISHED')).toBe(true);

    // The same sweep run straight through creates exactly the same trials.
    const straight = await runSweep(s, { executor: new FakeExecutor(4), statePath: join(dir, 'straight.json') });
    expect(resumed.state.trials.map((t) => t.params)).toEqual(straight.state.trials.map((t) => t.params));
    expect(resumed.state.trials.map((t) => t.finalMetric)).toEqual(straight.state.trials.map((t) => t.finalMetric));
  });
});

describe('resume', () => {
  const trial = (index: number, state: TrialState, attempts: number, params: Params): Trial => ({
    id: trialId(index),
    index,
    params,
    overrides: toOverrides(params),
    state,
    attempts,
    runId: attempts > 0 ? `old-${index}` : null,
    epochs: state === 'FINISHED' ? [{ val_accuracy: 0.5 }] : [],
    finalMetric: state === 'FINISHED' || state === 'PRUNED' ? 0.5 : null,
    reason: null,
  });

  async function table(s: SweepSpec, path: string): Promise<SweepState> {
    const state = newState(s.name, sweepFingerprint(s));
    // Params deliberately not the searcher's: a resumed trial must keep what was stored.
    const p = (lr: number): Params => ({ 'train.optimizer.learning_rate': lr });
    state.trials = [
      trial(0, 'FINISHED', 1, p(1e-3)),
      trial(1, 'PRUNED', 1, p(1e-2)),
      trial(2, 'RUNNING', 1, p(2e-3)),
      trial(3, 'PENDING', 0, p(3e-3)),
      trial(4, 'FAILED', 1, p(4e-3)),
      trial(5, 'KILLED', 1, p(5e-3)),
    ];
    await saveState(path, state);
    return state;
  }

  it('reruns only unfinished trials, with their stored params, then creates the rest', async () => {
    const statePath = join(dir, 'state.json');
    const s = spec({ maxTrials: 8, parallel: 2 });
    await table(s, statePath);
    const executor = new FakeExecutor(2);
    const launches: TrialLaunch[] = [];
    const start = executor.start.bind(executor);
    executor.start = (t, sink) => (launches.push(t), start(t, sink));
    const { state } = await runSweep(s, { executor, statePath });

    expect(executor.started).toEqual(['trial-002', 'trial-003', 'trial-005', 'trial-006', 'trial-007']);
    expect(launches[0]!.params).toEqual({ 'train.optimizer.learning_rate': 2e-3 });
    expect(launches[0]!.attempt).toBe(2);
    expect(launches[0]!.previousRunId).toBe('old-2');
    expect(launches[1]!.attempt).toBe(1);
    const random = createSearcher({ method: 'random', parameters: s.parameters, seed: 3, goal: 'maximize' });
    expect(launches[3]!.params).toEqual(random.suggest(6, []));
    expect(state.trials.map((t) => t.state)).toEqual([
      'FINISHED', 'PRUNED', 'FINISHED', 'FINISHED', 'FAILED', 'FINISHED', 'FINISHED', 'FINISHED',
    ]);
    // Finished work is untouched.
    expect(state.trials[0]!.runId).toBe('old-0');
    expect(state.trials[0]!.epochs).toEqual([{ val_accuracy: 0.5 }]);
  });

  it('retries a failed trial while it has attempts left', async () => {
    const statePath = join(dir, 'state.json');
    const s = spec({ maxTrials: 6, maxAttempts: 2 });
    await table(s, statePath);
    const executor = new FakeExecutor(1);
    await runSweep(s, { executor, statePath });
    expect(executor.started).toEqual(['trial-002', 'trial-003', 'trial-004', 'trial-005']);
  });

  it('refuses a state file made by a different sweep definition', async () => {
    const statePath = join(dir, 'state.json');
    await table(spec(), statePath);
    await expect(runSweep(spec({ seed: 4 }), { executor: new FakeExecutor(1), statePath })).rejects.toThrow(
      /belongs to a different sweep definition/,
    );
  });

  it('does not judge again the epochs a continued run had already passed', async () => {
    const statePath = join(dir, 'state.json');
    const s = spec({
      maxTrials: 2,
      parallel: 1,
      earlyTerminate: { type: 'asha', gracePeriod: 1, reductionFactor: 3, maxEpochs: 9 },
    });
    const state = newState(s.name, sweepFingerprint(s));
    const strong = trial(0, 'FINISHED', 1, { 'train.optimizer.learning_rate': 1e-3 });
    strong.epochs = Array.from({ length: 9 }, () => ({ val_accuracy: 0.99 }));
    // Killed at epoch 3 after passing its rungs; its continued run reports epochs 1-3 again.
    const weak = trial(1, 'KILLED', 1, { 'train.optimizer.learning_rate': 1e-5 });
    weak.epochs = [1, 2, 3].map((e) => ({ val_accuracy: accuracyAt(weak.params, e) }));
    state.trials = [strong, weak];
    await saveState(statePath, state);
    const { state: after } = await runSweep(s, { executor: new FakeExecutor(5), statePath });
    expect(after.trials.map((t) => [t.id, t.state, t.epochs.length])).toEqual([
      ['trial-000', 'FINISHED', 9],
      ['trial-001', 'FINISHED', 5],
    ]);
  });

  it('bestTrial ignores pruned and failed trials', async () => {
    const s = spec();
    const state = await table(s, join(dir, 'x.json'));
    state.trials[1]!.finalMetric = 0.9; // pruned, higher, but not a full run
    expect(bestTrial(state, s)?.id).toBe('trial-000');
  });
});
