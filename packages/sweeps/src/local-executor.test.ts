import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TrialLaunch, TrialSink } from './executor.ts';
import { LocalProcessExecutor } from './local-executor.ts';
import type { EpochMetrics } from './state.ts';

const fakeExp = join(import.meta.dirname, '__fixtures__', 'fake-exp.mjs');
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-local-exec-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function launch(id: string, overrides: string[] = [], extra: Partial<TrialLaunch> = {}): TrialLaunch {
  return {
    sweep: 'toy',
    id,
    index: 0,
    experiment: '/experiments/toy.yaml',
    params: {},
    overrides,
    attempt: 1,
    previousRunId: null,
    tags: { 'sweep.name': 'toy', 'sweep.trial': id, 'sweep.attempt': '1' },
    ...extra,
  };
}

/** Collects a trial's events and resolves when it ends. */
function recorder() {
  const events: (string | [number, EpochMetrics])[] = [];
  let runId = '';
  let end!: (outcome: { kind: string; detail?: unknown }) => void;
  const done = new Promise<{ kind: string; detail?: unknown }>((resolve) => (end = resolve));
  const sink: TrialSink = {
    started: (id) => {
      runId = id;
      events.push('started');
    },
    epoch: (epoch, metrics) => events.push([epoch, metrics]),
    finished: (metrics) => end({ kind: 'finished', detail: metrics }),
    failed: (error) => end({ kind: 'failed', detail: error }),
    killed: () => end({ kind: 'killed' }),
  };
  return { sink, events, done, runId: () => runId };
}

const executor = (env: Record<string, string> = {}) =>
  new LocalProcessExecutor({ command: [process.execPath, fakeExp], trialsDir: join(dir, 'trials'), pollMs: 20, env });

describe('LocalProcessExecutor', () => {
  it('reports the run, every epoch and the final metrics, and tags the run', async () => {
    const ex = executor();
    const r = recorder();
    await ex.start(launch('trial-000', ['train.optimizer.learning_rate=0.01']), r.sink);
    const outcome = await r.done;
    expect(outcome).toEqual({ kind: 'finished', detail: { val_loss: 1 / 3, test_loss: 0.5 } });
    expect(r.events).toEqual(['started', [1, { val_loss: 1 }], [2, { val_loss: 0.5 }], [3, { val_loss: 1 / 3 }]]);
    const runDir = join(dir, 'trials/trial-000/attempt-1/fake', r.runId());
    const tags = JSON.parse(readFileSync(join(runDir, 'tags.json'), 'utf8'));
    expect(tags).toMatchObject({ 'sweep.name': 'toy', 'sweep.trial': 'trial-000', 'tessera.seed': '1' });
    // The child got the experiment, the overrides and its own run store.
    expect(tags['fake.args']).toBe(
      `run /experiments/toy.yaml --set train.optimizer.learning_rate=0.01 --runs-dir ${join(dir, 'trials/trial-000/attempt-1')} ` +
        '--tag sweep.name=toy --tag sweep.trial=trial-000 --tag sweep.attempt=1',
    );
  });

  it('stops a trial with SIGTERM; the KILLED run carries the reason as a tag', async () => {
    const ex = executor({ FAKE_EPOCHS: '100', FAKE_EPOCH_MS: '30' });
    const r = recorder();
    await ex.start(launch('trial-001'), r.sink);
    while (r.events.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    ex.stop('trial-001', 'asha: val_loss 1.000 at rung 0 (epoch 1) ranks 2 of 2, top 1 continue');
    expect(await r.done).toEqual({ kind: 'killed' });
    const tags = JSON.parse(readFileSync(join(dir, 'trials/trial-001/attempt-1/fake', r.runId(), 'tags.json'), 'utf8'));
    expect(tags['sweep.stop_reason']).toBe('asha: val_loss 1.000 at rung 0 (epoch 1) ranks 2 of 2, top 1 continue');
  });

  it('reports a failed run with its recorded error, and a run that never started with its output', async () => {
    const ex = executor();
    const failing = recorder();
    await ex.start(launch('trial-002', ['fail=true']), failing.sink);
    const failed = await failing.done;
    expect(failed.kind).toBe('failed');
    expect(failed.detail).toMatch(/^exp run ended with exit code 1: loss is NaN at epoch 2, step 7 \(log: .*output\.log\)$/);

    const crashing = recorder();
    await ex.start(launch('trial-003', ['crash=true']), crashing.sink);
    const crashed = await crashing.done;
    expect(crashed.detail).toContain('exit code 2: experiments/x.yaml:3:5 train.epochs: expected an integer');
    expect(crashing.events).toEqual([]);
  });

  it('continues an interrupted attempt from its checkpoint with exp run --resume', async () => {
    const first = executor({ FAKE_EPOCHS: '100', FAKE_EPOCH_MS: '30' });
    const r1 = recorder();
    await first.start(launch('trial-004'), r1.sink);
    while (r1.events.length < 3) await new Promise((resolve) => setTimeout(resolve, 10));
    first.stop('trial-004', 'sweep interrupted');
    await r1.done;
    const runId = r1.runId();

    const second = executor({ FAKE_EPOCHS: '10', FAKE_EPOCH_MS: '5' });
    const r2 = recorder();
    const tags = { 'sweep.name': 'toy', 'sweep.trial': 'trial-004', 'sweep.attempt': '2' };
    await second.start(launch('trial-004', [], { attempt: 2, previousRunId: runId, tags }), r2.sink);
    expect((await r2.done).kind).toBe('finished');
    expect(r2.runId()).toBe(runId);
    const epochs = r2.events.filter((e) => Array.isArray(e)).map((e) => (e as [number, EpochMetrics])[0]);
    // The same run, every epoch once: those before the interruption, then the continued ones.
    expect(epochs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const recorded = JSON.parse(readFileSync(join(dir, 'trials/trial-004/attempt-1/fake', runId, 'tags.json'), 'utf8'));
    expect(recorded['fake.args']).toBe(
      `run --resume ${join(dir, 'trials/trial-004/attempt-1/fake', runId)} --runs-dir ${join(dir, 'trials/trial-004/attempt-1')} ` +
        '--tag sweep.name=toy --tag sweep.trial=trial-004 --tag sweep.attempt=2',
    );
  });
});

describe('LocalProcessExecutor adopting a finished run', () => {
  it('reports a run that finished after the sweep lost track of it, without running it again', async () => {
    const first = recorder();
    await executor().start(launch('trial-005'), first.sink);
    await first.done;
    // The sweep died before it heard the end: the trial comes back as attempt 2 of the same run.
    const ex = new LocalProcessExecutor({ command: ['/nonexistent/exp'], trialsDir: join(dir, 'trials'), pollMs: 20 });
    const again = recorder();
    await ex.start(launch('trial-005', [], { attempt: 2, previousRunId: first.runId() }), again.sink);
    expect(await again.done).toEqual({ kind: 'finished', detail: { val_loss: 1 / 3, test_loss: 0.5 } });
    expect(again.runId()).toBe(first.runId());
    expect(again.events).toEqual(['started', [1, { val_loss: 1 }], [2, { val_loss: 0.5 }], [3, { val_loss: 1 / 3 }]]);
  });
});

describe('runSweep with LocalProcessExecutor', () => {
  it('an interrupted sweep resumes: KILLED runs continue from their checkpoints, finished ones are kept', async () => {
    const { runSweep } = await import('./runner.ts');
    const { TPE_DEFAULTS } = await import('./tpe.ts');
    const spec = {
      name: 'fake',
      file: join(dir, 'fake.yaml'),
      experiment: '/experiments/fake.yaml',
      baseOverrides: [],
      method: 'grid' as const,
      objective: { metric: 'val_loss', goal: 'minimize' as const, summary: 'last' as const },
      parameters: [{ path: 'model.vars.width', distribution: { type: 'categorical' as const, values: [1, 2, 3] } }],
      maxTrials: 3,
      parallel: 2,
      seed: 0,
      maxAttempts: 1,
      earlyTerminate: null,
      bayes: { startupTrials: 10, ...TPE_DEFAULTS },
    };
    const statePath = join(dir, 'state.json');
    const controller = new AbortController();
    const slow = new LocalProcessExecutor({
      command: [process.execPath, fakeExp],
      trialsDir: join(dir, 'trials'),
      pollMs: 20,
      // Long enough that neither trial can finish before the interrupt.
      env: { FAKE_EPOCHS: '120', FAKE_EPOCH_MS: '30' },
    });
    const first = await runSweep(spec, {
      executor: slow,
      statePath,
      signal: controller.signal,
      log: (line) => {
        if (!line.startsWith('trial-001 started')) return;
        // Interrupt once both runs have logged an epoch (so both have checkpoints).
        const waiting = setInterval(() => {
          const logged = ['trial-000', 'trial-001'].every((id) => {
            const runs = join(dir, 'trials', id, 'attempt-1/fake');
            return existsSync(runs) && readdirSync(runs).some((run) => existsSync(join(runs, run, 'metrics.jsonl')));
          });
          if (!logged) return;
          clearInterval(waiting);
          controller.abort();
        }, 10);
      },
    });
    expect(first.interrupted).toBe(true);
    const killed = first.state.trials.filter((t) => t.state === 'KILLED');
    expect(killed.map((t) => t.id)).toEqual(['trial-000', 'trial-001']);
    const killedRuns = Object.fromEntries(killed.map((t) => [t.id, t.runId]));

    const fast = new LocalProcessExecutor({ command: [process.execPath, fakeExp], trialsDir: join(dir, 'trials'), pollMs: 20, env: { FAKE_EPOCHS: '120', FAKE_EPOCH_MS: '1' } });
    const second = await runSweep(spec, { executor: fast, statePath });
    expect(second.interrupted).toBe(false);
    expect(second.state.trials.map((t) => [t.id, t.state, t.epochs.length, t.attempts])).toEqual([
      ['trial-000', 'FINISHED', 120, 2],
      ['trial-001', 'FINISHED', 120, 2],
      ['trial-002', 'FINISHED', 120, 1],
    ]);
    // The interrupted trials continued their own runs rather than starting new ones.
    for (const [id, runId] of Object.entries(killedRuns)) expect(second.state.trials.find((t) => t.id === id)!.runId).toBe(runId);
    expect(second.state.trials[0]!.finalMetric).toBeCloseTo(1 / 120, 12);
  });
});
