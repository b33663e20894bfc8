import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MlflowClient } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import { LocalRunStore, readMetrics, readRunMeta, MlflowTracker, combineTrackers, readSyncStates } from '@tessera/core';
import { LocalProcessExecutor } from './local-executor.ts';
import { runSweep } from './runner.ts';
import { tagEndedRun } from './run-tags.ts';
import type { SweepSpec } from './spec.ts';
import { describeDistribution, sweepParams } from './sweep-run.ts';
import { TPE_DEFAULTS } from './tpe.ts';

const fakeExp = join(import.meta.dirname, '__fixtures__', 'fake-exp.mjs');
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-sweep-run-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A grid over the fake run's `scale` (its val_loss is scale / epoch), written as a real sweep file. */
function fakeSweep(values: (number | string)[], extra: Partial<SweepSpec> = {}): SweepSpec {
  const file = join(dir, 'fake-grid.yaml');
  writeFileSync(file, `experiment: fake.yaml\nmethod: grid\nobjective: {metric: val_loss, goal: minimize}\nparameters:\n  scale: {values: ${JSON.stringify(values)}}\n`);
  return {
    name: 'fake-grid',
    file,
    experiment: join(dir, 'fake.yaml'),
    baseOverrides: [],
    method: 'grid',
    objective: { metric: 'val_loss', goal: 'minimize', summary: 'last' },
    parameters: [{ path: 'scale', distribution: { type: 'categorical', values } }],
    maxTrials: values.length,
    parallel: 2,
    seed: 0,
    maxAttempts: 1,
    earlyTerminate: null,
    bayes: { startupTrials: 10, ...TPE_DEFAULTS },
    ...extra,
  };
}

const executor = (env: Record<string, string> = {}) =>
  new LocalProcessExecutor({ command: [process.execPath, fakeExp], trialsDir: join(dir, 'trials'), pollMs: 20, env: { FAKE_EPOCH_MS: '5', ...env } });

/** The sweep's run in the local store only (no MLflow, whatever the environment says). */
const localTracking = () => ({ runsDir: join(dir, 'runs'), experiment: 'fake', tracking: {}, createTracker: () => undefined });

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('the sweep run (local store)', () => {
  it('is the parent of every trial run and ends with the best trial; a resumed sweep continues the same run', async () => {
    const spec = fakeSweep([3, 1, 2]);
    const statePath = join(dir, 'state.json');
    const first = await runSweep(spec, { executor: executor(), statePath, tracking: localTracking() });

    const runId = first.state.runId!;
    const runDir = join(dir, 'runs/fake', runId);
    expect(json(statePath).runId).toBe(runId);
    const meta = await readRunMeta(runDir);
    expect(meta).toMatchObject({ runId, experiment: 'fake', runName: 'fake-grid', status: 'FINISHED' });
    // Each trial run names it as its parent (exp run --parent-run), with its sweep tags from the start.
    for (const trial of first.state.trials) {
      const trialDir = join(dir, 'trials', trial.id, 'attempt-1/fake', trial.runId!);
      expect((await readRunMeta(trialDir)).parentRunId).toBe(runId);
      expect(json(join(trialDir, 'tags.json'))).toMatchObject({ 'sweep.name': 'fake-grid', 'sweep.trial': trial.id, 'sweep.attempt': '1', 'sweep.metric': 'val_loss' });
      expect(json(join(trialDir, 'tags.json'))['fake.args']).toContain(`--parent-run ${runId} --tag sweep.name=fake-grid`);
    }

    expect(json(join(runDir, 'params.json'))).toEqual({
      'sweep.method': 'grid',
      'sweep.metric': 'val_loss',
      'sweep.goal': 'minimize',
      'sweep.summary': 'last',
      'sweep.seed': 0,
      'sweep.experiment': join(dir, 'fake.yaml'),
      'space.scale': '[3,1,2]',
    });
    const tags = json(join(runDir, 'tags.json'));
    expect(tags).toMatchObject({
      'tessera.sweep': 'fake-grid',
      'tessera.sweep.method': 'grid',
      'tessera.sweep.metric': 'val_loss',
      'tessera.sweep.goal': 'minimize',
      'mlflow.source.name': spec.file,
      // The user tag every run carries, so the sweep's run is filtered like its trials.
      'mlflow.user': userInfo().username,
      // scale 1: val_loss 1/3 after 3 epochs, against 1 and 2/3.
      best_trial: 'trial-001',
      best_run_id: first.state.trials[1]!.runId,
      'best.scale': '1',
    });
    expect(readFileSync(join(runDir, 'artifacts/sweep.yaml'), 'utf8')).toBe(readFileSync(spec.file, 'utf8'));
    const trials = json(join(runDir, 'artifacts/trials.json')) as { id: string; state: string; val_loss: number }[];
    expect(trials.map((t) => [t.id, t.state, t.val_loss])).toEqual([
      ['trial-000', 'FINISHED', 1],
      ['trial-001', 'FINISHED', 1 / 3],
      ['trial-002', 'FINISHED', 2 / 3],
    ]);
    // One step per ended trial; the best so far after the last is scale 1's 1/3.
    const metrics = await readMetrics(runDir);
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(metrics.map((m) => m.trials_finished)).toEqual([1, 2, 3]);
    expect(metrics[2]!.best_val_loss).toBeCloseTo(1 / 3, 12);
    // Each finished trial's objective, step = trial number: the search's progress as a chart.
    expect(metrics.map((m) => m.trial_val_loss)).toEqual([1, 1 / 3, 2 / 3]);

    const again = await runSweep(spec, { executor: executor(), statePath, tracking: localTracking() });
    expect(again.state.runId).toBe(runId);
    const resumed = await readRunMeta(runDir);
    expect(resumed.status).toBe('FINISHED');
    expect(resumed.resumedAt).toHaveLength(1);
    expect((await readMetrics(runDir)).map((m) => m.step)).toEqual([1, 2, 3]); // nothing logged twice
  });

  it('an interrupted sweep ends its run KILLED, and the resumed sweep finishes the same run', async () => {
    const spec = fakeSweep([1, 2], { parallel: 2 });
    const statePath = join(dir, 'state.json');
    const controller = new AbortController();
    const first = await runSweep(spec, {
      executor: executor({ FAKE_EPOCHS: '200', FAKE_EPOCH_MS: '20' }),
      statePath,
      signal: controller.signal,
      tracking: localTracking(),
      log: (line) => line.startsWith('trial-001 started') && setTimeout(() => controller.abort(), 300),
    });
    expect(first.interrupted).toBe(true);
    const runDir = join(dir, 'runs/fake', first.state.runId!);
    expect((await readRunMeta(runDir)).status).toBe('KILLED');

    const second = await runSweep(spec, { executor: executor({ FAKE_EPOCHS: '3' }), statePath, tracking: localTracking() });
    expect(second.state.runId).toBe(first.state.runId);
    expect((await readRunMeta(runDir)).status).toBe('FINISHED');
    // Both runs continued for different lengths: the best is whichever ended lower.
    const [best] = [...second.state.trials].sort((a, b) => a.finalMetric! - b.finalMetric!);
    expect(json(join(runDir, 'tags.json')).best_trial).toBe(best!.id);
  });

  it('a sweep whose every trial failed ends its run FAILED', async () => {
    const spec = fakeSweep([1, 2]);
    spec.parameters = [{ path: 'fail', distribution: { type: 'categorical', values: [true] } }];
    spec.maxTrials = 1;
    const result = await runSweep(spec, { executor: executor(), statePath: join(dir, 'state.json'), tracking: localTracking() });
    const meta = await readRunMeta(join(dir, 'runs/fake', result.state.runId!));
    expect(meta.status).toBe('FAILED');
    expect(meta.error).toBe('every trial failed (1)');
  });

  it('describes the search space as stable params', () => {
    expect(describeDistribution({ type: 'log_uniform', min: 0.0001, max: 0.01 })).toBe('log_uniform(0.0001, 0.01)');
    expect(describeDistribution({ type: 'categorical', values: [16, 'a', true] })).toBe('[16,"a",true]');
    // parallel and max_trials may change on resume: MLflow params cannot, so they are not params.
    expect(Object.keys(sweepParams(fakeSweep([1], { parallel: 7, maxTrials: 9 })))).not.toContain('sweep.parallel');
  });
});

const mlflow = locateMlflowForTests();

describe.skipIf(!mlflow.binary)('tagEndedRun against a real MLflow server', () => {
  let server: MlflowServerHandle;
  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary! });
  }, 120_000);
  afterAll(() => server?.stop());

  it('tags an ended run in the local store and in MLflow; a server that is down leaves an outbox entry', async () => {
    const client = new MlflowClient({ trackingUri: server.uri });
    const local = new LocalRunStore(join(dir, 'runs'));
    const remote = new MlflowTracker({ client, experiment: 'tag-ended', local, log: () => {} });
    const tracker = combineTrackers(local, remote);
    const info = await tracker.startRun({ experiment: 'tag-ended', tags: { 'sweep.trial': 'trial-000' } });
    await tracker.endRun('KILLED');

    await tagEndedRun(info.dir!, { 'sweep.stop_reason': 'median: 0.9 is worse than the median 0.5' });
    expect(json(join(info.dir!, 'tags.json'))).toMatchObject({ 'sweep.trial': 'trial-000', 'sweep.stop_reason': 'median: 0.9 is worse than the median 0.5' });
    const run = await client.getRun(remote.mlflowRunId!);
    expect(run.data.tags['sweep.stop_reason']).toBe('median: 0.9 is worse than the median 0.5');
    expect(run.info.status).toBe('KILLED');
    expect((await readSyncStates(info.dir!))[client.trackingUri]!.pending).toBe(false);

    // The same run, as if its server were now down (a closed port under the same record).
    const states = await readSyncStates(info.dir!);
    const closed = 'http://127.0.0.1:9';
    writeFileSync(join(info.dir!, 'mlflow.json'), JSON.stringify({ [closed]: { ...states[client.trackingUri]!, trackingUri: closed } }));
    await tagEndedRun(info.dir!, { 'sweep.stop_reason': 'asha' });
    const after = (await readSyncStates(info.dir!))[closed]!;
    expect(after.pending).toBe(true);
    expect(after.outbox.map((o) => o.call)).toEqual(['setTags sweep.stop_reason']);
    expect(json(join(info.dir!, 'tags.json'))['sweep.stop_reason']).toBe('asha');
  }, 60_000);
});
