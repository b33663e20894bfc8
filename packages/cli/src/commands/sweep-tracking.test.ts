import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRunMeta, runExperiment, type StartRunOptions, type Tracker } from '@tessera/core';
import { LocalProcessExecutor, type SweepState } from '@tessera/sweeps';
import { MlflowClient, type Run } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import { runCli } from '../test-helpers.ts';
import { builtinRegistries } from '@tessera/builtins';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-sweep-tracking-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const exp = (...argv: string[]) => runCli(argv, { cwd: ROOT, registries: builtinRegistries });

describe('exp run --tag / --parent-run', () => {
  it('rejects a tag without a value or with a key MLflow refuses, exit 2', async () => {
    for (const bad of ['novalue', 'a*b=1']) {
      const result = await exp('run', 'experiments/smoke.yaml', '--tag', bad);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`--tag expects KEY=VALUE with a key of letters, digits, _ - . : / or spaces, got "${bad}"`);
    }
  });

  it('hands the tags and the parent to the trackers at the start of the run; they win over tracking.tags; tracking.run_name wins over the trial\u2019s name', async () => {
    const calls: { call: string; args: unknown }[] = [];
    const recorder: Tracker = {
      startRun: async (options: StartRunOptions) => (calls.push({ call: 'startRun', args: options }), { runId: 'x', experiment: options.experiment }),
      logParams: async () => {},
      logMetrics: async () => {},
      setTags: async (tags) => void calls.push({ call: 'setTags', args: tags }),
      logArtifact: async () => {},
      endRun: async () => {},
    };
    const summary = await runExperiment(join(ROOT, 'experiments/smoke.yaml'), {
      registries: builtinRegistries(),
      epochs: 1,
      backend: 'cpu',
      overrides: ['tracking.tags={team: file, sweep.trial: from-file}', 'tracking.run_name=my-name'],
      runsDir: join(tmp, 'tagged'),
      tags: { 'sweep.trial': 'trial-007', 'mlflow.runName': 'trial-007 lr=0.01' },
      parentRunId: '20261129-000000-abcdef',
      createTracker: () => recorder,
      progress: 'none',
      output: { write: () => true },
    });
    // The second tracker's first call is startRun, with the tags and the parent (MLflow creates the run with them).
    expect(calls[0]).toEqual({
      call: 'startRun',
      args: expect.objectContaining({
        runName: 'my-name',
        tags: expect.objectContaining({ 'sweep.trial': 'trial-007', 'mlflow.runName': 'my-name' }),
        parentRunId: '20261129-000000-abcdef',
      }),
    });
    const tags = Object.assign({}, ...calls.filter((c) => c.call === 'setTags').map((c) => c.args)) as Record<string, string>;
    expect(tags).toMatchObject({ team: 'file', 'sweep.trial': 'trial-007', 'tessera.parent_run_id': '20261129-000000-abcdef' });
    const meta = await readRunMeta(summary.runDir);
    expect(meta.parentRunId).toBe('20261129-000000-abcdef');
    expect(meta.runName).toBe('my-name');
    expect(JSON.parse(readFileSync(join(summary.runDir, 'tags.json'), 'utf8'))['sweep.trial']).toBe('trial-007');
  }, 60_000);
});

const mlflow = locateMlflowForTests();

describe.skipIf(!mlflow.binary)('exp sweep tracked in MLflow (a real server)', () => {
  let server: MlflowServerHandle;
  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary! });
  }, 120_000);
  afterAll(() => server?.stop());

  it(
    'one sweep run with the spec and the best trial, four trial runs nested under it; a resumed sweep adds nothing',
    async () => {
      const runsDir = join(tmp, 'runs');
      const sweepFile = join(ROOT, 'experiments/sweeps/smoke-grid.yaml');
      const args = ['packages/cli/src/bin.ts', 'sweep', 'experiments/sweeps/smoke-grid.yaml', '--set', 'train.epochs=1', '--backend', 'cpu', '--runs-dir', runsDir];
      const env = { ...process.env, MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: 'smoke-sweep' };
      const first = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), args, { cwd: ROOT, env, encoding: 'utf8', timeout: 240_000 });
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      const state = JSON.parse(readFileSync(join(runsDir, 'sweeps/smoke-grid/state.json'), 'utf8')) as SweepState;
      expect(state.trials.map((t) => t.state)).toEqual(['FINISHED', 'FINISHED', 'FINISHED', 'FINISHED']);
      expect(first.stdout).toContain(`sweep run ${state.runId}: `);

      const client = new MlflowClient({ trackingUri: server.uri });
      const experiment = await client.getExperimentByName('smoke-sweep');
      const runs = await client.searchAllRuns({ experimentIds: [experiment!.experimentId] });
      const parents = runs.filter((r) => r.data.tags['tessera.sweep'] === 'smoke-grid');
      expect(parents).toHaveLength(1);
      const parent = parents[0]!;
      const children = runs.filter((r) => r !== parent);
      expect(children).toHaveLength(4);

      // The sweep's run: tags, the search space as params, the file as sweep.yaml, its status.
      expect(parent.info.status).toBe('FINISHED');
      expect(parent.info.runName).toBe('smoke-grid');
      expect(parent.data.tags).toMatchObject({
        'tessera.run_id': state.runId,
        'tessera.sweep.method': 'grid',
        'tessera.sweep.metric': 'val_loss',
        'tessera.sweep.goal': 'minimize',
      });
      expect(parent.data.params).toMatchObject({
        'space.train.optimizer.learning_rate': '[0.01,0.003]',
        'space.model.layers.1.units': '[16,32]',
        'sweep.method': 'grid',
        'sweep.overrides': '["train.epochs=1"]',
      });
      expect(new TextDecoder().decode(await client.downloadArtifact(parent.info.runId, 'sweep.yaml'))).toBe(readFileSync(sweepFile, 'utf8'));

      // Each trial's run: nested under the sweep's run, its sweep tags, its params (for parallel coordinates).
      const byTrial = new Map<string, Run>(children.map((c) => [c.data.tags['sweep.trial']!, c]));
      expect([...byTrial.keys()].sort()).toEqual(['trial-000', 'trial-001', 'trial-002', 'trial-003']);
      for (const trial of state.trials) {
        const child = byTrial.get(trial.id)!;
        expect(child.info.status).toBe('FINISHED');
        expect(child.data.tags).toMatchObject({
          'mlflow.parentRunId': parent.info.runId,
          'tessera.parent_run_id': state.runId,
          'tessera.run_id': trial.runId,
          'sweep.name': 'smoke-grid',
          'sweep.attempt': '1',
          'sweep.metric': 'val_loss',
        });
        // The objective first: MLflow's compare page draws parallel coordinates with a run's first metric.
        expect(child.data.metrics[0]!.key).toBe('val_loss');
        expect(child.data.params['train.optimizer.learning_rate']).toBe(String(trial.params['train.optimizer.learning_rate']));
        expect(child.data.params['model.layers.1.units']).toBe(String(trial.params['model.layers.1.units']));
        expect(child.data.params['train.epochs']).toBe('1');
        // The local store: the same parent, by its local id.
        const local = join(runsDir, 'sweeps/smoke-grid/trials', trial.id, 'attempt-1/smoke', trial.runId!);
        expect((await readRunMeta(local)).parentRunId).toBe(state.runId);
      }

      // The best trial, computed here from what MLflow holds for the children (last val_loss).
      const valLoss = (r: Run) => r.data.metrics.find((m) => m.key === 'val_loss')!.value;
      const best = [...children].sort((a, b) => valLoss(a) - valLoss(b))[0]!;
      expect(parent.data.metrics.find((m) => m.key === 'best_val_loss')!.value).toBeCloseTo(valLoss(best), 6);
      expect(parent.data.tags.best_trial).toBe(best.data.tags['sweep.trial']);
      // In MLflow best_run_id is the best trial's MLflow run id (a run URL works); the local id is kept beside it.
      expect(parent.data.tags.best_run_id).toBe(best.info.runId);
      expect(parent.data.tags['tessera.best_run_id']).toBe(best.data.tags['tessera.run_id']);
      // The sweep's run carries the user and the code's commit, as its trials do.
      expect(parent.data.tags['mlflow.user']).toBe(best.data.tags['mlflow.user']);
      expect(parent.data.tags['mlflow.source.git.commit']).toMatch(/^[0-9a-f]{40}$/);
      expect(parent.data.tags['mlflow.source.git.commit']).toBe(best.data.tags['mlflow.source.git.commit']);
      // Each finished trial's objective on the sweep's run, step = trial number.
      const perTrial = await client.getMetricHistory(parent.info.runId, 'trial_val_loss');
      expect(perTrial.map((m) => [m.step, m.value]).sort((a, b) => a[0]! - b[0]!)).toEqual(
        [...children].map((c) => [Number(c.data.tags['sweep.trial']!.slice(6)) + 1, valLoss(c)]).sort((a, b) => a[0]! - b[0]!),
      );
      expect(parent.data.tags['best.train.optimizer.learning_rate']).toBe(best.data.params['train.optimizer.learning_rate']);
      expect(parent.data.tags['best.model.layers.1.units']).toBe(best.data.params['model.layers.1.units']);
      expect((await client.getMetricHistory(parent.info.runId, 'trials_finished')).map((m) => [m.step, m.value])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
      ]);

      // Resumed: the same sweep run (local and MLflow), no new trial runs.
      const again = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), args, { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
      expect(again.status).toBe(0);
      expect(again.stdout).toContain('resuming smoke-grid: 4 trial(s) done, 0 to (re)run');
      expect(again.stdout).toContain(`sweep run ${state.runId} (continued)`);
      const after = await client.searchAllRuns({ experimentIds: [experiment!.experimentId] });
      expect(after.map((r) => r.info.runId).sort()).toEqual(runs.map((r) => r.info.runId).sort());
      expect((await client.getRun(parent.info.runId)).info.status).toBe('FINISHED');
      const parentMeta = await readRunMeta(join(runsDir, 'smoke', state.runId!));
      expect(parentMeta).toMatchObject({ status: 'FINISHED', runName: 'smoke-grid' });
      expect(parentMeta.resumedAt).toHaveLength(1);
    },
    400_000,
  );

  it('a trial stopped by the sweep (a real exp run) ends KILLED with its stop reason in the local store and in MLflow', async () => {
    const trialsDir = join(tmp, 'pruned');
    const executor = new LocalProcessExecutor({
      command: [join(ROOT, 'node_modules/.bin/tsx'), join(ROOT, 'packages/cli/src/bin.ts')],
      trialsDir,
      cwd: ROOT,
      env: { MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: 'smoke-pruned' },
      pollMs: 100,
    });
    const reason = 'median: val_loss 1.3 at epoch 1 is worse than the median 1.1 of 3 trials';
    let runId = '';
    const outcome = await new Promise<string>((resolve, reject) => {
      void executor
        .start(
          {
            sweep: 'pruned',
            id: 'trial-000',
            index: 0,
            experiment: join(ROOT, 'experiments/smoke.yaml'),
            params: {},
            overrides: ['train.epochs=200', 'backend=cpu'],
            attempt: 1,
            previousRunId: null,
            tags: { 'sweep.name': 'pruned', 'sweep.trial': 'trial-000', 'sweep.attempt': '1' },
          },
          {
            started: (id) => (runId = id),
            epoch: (epoch) => epoch === 1 && void executor.stop('trial-000', reason),
            finished: () => resolve('finished'),
            failed: (error) => reject(new Error(error)),
            killed: () => resolve('killed'),
          },
        )
        .catch(reject);
    });
    expect(outcome).toBe('killed');
    const runDir = join(trialsDir, 'trial-000/attempt-1/smoke', runId);
    expect((await readRunMeta(runDir)).status).toBe('KILLED');
    expect(JSON.parse(readFileSync(join(runDir, 'tags.json'), 'utf8'))['sweep.stop_reason']).toBe(reason);
    const client = new MlflowClient({ trackingUri: server.uri });
    const experiment = await client.getExperimentByName('smoke-pruned');
    const [run] = await client.searchAllRuns({ experimentIds: [experiment!.experimentId] });
    expect(run!.info.status).toBe('KILLED');
    expect(run!.data.tags).toMatchObject({ 'sweep.stop_reason': reason, 'sweep.trial': 'trial-000', 'tessera.run_id': runId });
  }, 120_000);

  it('a sweep recorded without a server, sent later with exp sync (the sweep run first): the trials nest under it', async () => {
    const runsDir = join(tmp, 'offline');
    const args = ['packages/cli/src/bin.ts', 'sweep', 'experiments/sweeps/smoke-grid.yaml', '--set', 'train.epochs=1', '--max-trials', '2', '--backend', 'cpu', '--runs-dir', runsDir];
    const { MLFLOW_TRACKING_URI: _none, ...env } = process.env;
    const sweep = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), args, { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 });
    expect(sweep.status).toBe(0);
    const state = JSON.parse(readFileSync(join(runsDir, 'sweeps/smoke-grid/state.json'), 'utf8')) as SweepState;
    const trialDirs = state.trials.map((t) => join(runsDir, 'sweeps/smoke-grid/trials', t.id, 'attempt-1/smoke', t.runId!));

    const sync = await exp('sync', state.runId!, ...trialDirs, '--uri', server.uri, '--runs-dir', runsDir, '--mlflow-experiment', 'smoke-offline');
    expect(sync.stderr).toBe('');
    expect(sync.code).toBe(0);
    const client = new MlflowClient({ trackingUri: server.uri });
    const experiment = await client.getExperimentByName('smoke-offline');
    const runs = await client.searchAllRuns({ experimentIds: [experiment!.experimentId] });
    const parent = runs.find((r) => r.data.tags['tessera.run_id'] === state.runId)!;
    expect(parent.data.tags['tessera.sweep']).toBe('smoke-grid');
    const children = runs.filter((r) => r !== parent);
    expect(children.map((c) => c.data.tags['sweep.trial']).sort()).toEqual(['trial-000', 'trial-001']);
    for (const child of children) expect(child.data.tags['mlflow.parentRunId']).toBe(parent.info.runId);
  }, 240_000);
});
