// exp worker and exp sweep --executor queue / status: usage errors in-process, then the real
// binaries end to end (real redis-server, real `exp run` children): a worker killed with kill -9
// mid-trial, its trial resumed by another worker from the checkpoint through `exp run --resume`;
// a sweep over the plugin example, whose trials load the plugin on the worker.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStatus } from '@tessera/sweeps/queue';
import { MlflowClient, type Run } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer } from '@tessera/mlflow/testing';
import { locateRedisForTests, startRedis, type RedisServer } from '@tessera/sweeps/queue/testing';
import { runCli } from '../test-helpers.ts';

const ROOT = join(import.meta.dirname, '../../../..');
const BIN = join(ROOT, 'packages/cli/src/bin.ts');
const SMOKE_GRID = join(ROOT, 'experiments/sweeps/smoke-grid.yaml');
const PLUGIN_SWEEP = join(ROOT, 'examples/plugins/resmlp-sweep.yaml');
const redis = locateRedisForTests();
const mlflow = locateMlflowForTests();

describe('exp worker / exp sweep --executor queue: usage', () => {
  it('needs a Redis URL and says what is wrong with one, without echoing its password', async () => {
    const saved = process.env.TESSERA_QUEUE;
    delete process.env.TESSERA_QUEUE;
    try {
      const none = await runCli(['worker']);
      expect(none.code).toBe(2);
      expect(none.stderr).toContain('--queue redis://HOST:PORT/DB is required (or set TESSERA_QUEUE)');
      const http = await runCli(['worker', '--queue', 'http://queue.lan/0']);
      expect(http.code).toBe(2);
      expect(http.stderr).toContain('--queue expects a redis:// or rediss:// URL, got "http://..."');
      const secret = await runCli(['sweep', SMOKE_GRID, '--executor', 'queue', '--queue', 'redis://me:hunter2@queue.lan/x']);
      expect(secret.code).toBe(2);
      expect(secret.stderr).toContain('the database in redis://me:****@queue.lan/x must be a number');
      expect(secret.stderr).not.toContain('hunter2');
    } finally {
      if (saved !== undefined) process.env.TESSERA_QUEUE = saved;
    }
  });

  it('rejects a bad --gpus, --concurrency, --executor, and a status without a name', async () => {
    const gpus = await runCli(['worker', '--queue', 'redis://127.0.0.1:1/0', '--gpus', '0,a']);
    expect([gpus.code, gpus.stderr]).toEqual([2, expect.stringContaining('--gpus expects GPU ids like 0,1, got "0,a"')]);
    const concurrency = await runCli(['worker', '--queue', 'redis://127.0.0.1:1/0', '--concurrency', '0']);
    expect([concurrency.code, concurrency.stderr]).toEqual([2, expect.stringContaining('--concurrency expects a whole number > 0, got "0"')]);
    const executor = await runCli(['sweep', SMOKE_GRID, '--executor', 'cloud']);
    expect([executor.code, executor.stderr]).toEqual([2, expect.stringContaining('--executor expects local or queue, got "cloud"')]);
    const extra = await runCli(['sweep', SMOKE_GRID, 'more']);
    expect([extra.code, extra.stderr]).toEqual([2, expect.stringContaining('unexpected argument "more"')]);
  });
});

describe.skipIf(!redis.binary)('exp worker and exp sweep --executor queue (real redis-server, real exp run)', () => {
  let server: RedisServer;
  let dir: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    server = await startRedis({ binary: redis.binary! });
    dir = mkdtempSync(join(tmpdir(), 'tessera-worker-cli-'));
  });
  afterAll(async () => {
    for (const child of children) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // ended already
      }
    }
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `exp ...args` as a process leading its own group, output to `<dir>/<name>.log`. */
  const exp = (name: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess => {
    const out = openSync(join(dir, `${name}.log`), 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env, CI: 'true' }, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    children.push(child);
    return child;
  };
  const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
  const log = (name: string) => readFileSync(join(dir, `${name}.log`), 'utf8');

  it('a real trial on a worker killed with kill -9 is resumed by another worker from its checkpoint', async () => {
    const url = `${server.url.slice(0, -2)}/5`;
    const runsDir = join(dir, 'runs');
    {
      // worker-a's lock is what the test waits out after killing it: short, yet longer than a
      // 5 s stall of a worker on a busy machine (renewed every second); worker-b's stalled-job
      // check runs every --lease seconds (at most 5).
      const first = exp('worker-a', ['worker', '--queue', url, '--runs-dir', runsDir, '--name', 'a', '--lease', '7']);
      const sweep = exp('sweep', ['sweep', SMOKE_GRID, '--executor', 'queue', '--queue', url, '--runs-dir', runsDir, '--max-trials', '1', '--backend', 'cpu']);
      const trial = async () => (await sweepStatus(url, 'smoke-grid'))?.trials[0];
      const deadline = Date.now() + 120_000;
      while (((await trial())?.epochs.length ?? 0) < 1) {
        if (Date.now() > deadline) throw new Error(`no epoch within 120 s\n${log('worker-a')}\n${log('sweep')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const runId = (await trial())!.runId;
      process.kill(-first.pid!, 'SIGKILL');
      exp('worker-b', ['worker', '--queue', url, '--runs-dir', runsDir, '--name', 'b', '--lease', '7']);

      expect(await exited(sweep), log('sweep')).toBe(0);
      expect(log('sweep')).toMatch(/trial-000\s+FINISHED/);
      expect(log('worker-b')).toContain(`smoke-grid/trial-000 attempt 2: started (continuing run ${runId})`);
      expect(log('worker-b')).toContain('smoke-grid/trial-000 attempt 2: finished');
      // The resumed run is the first attempt's run, completed: three epochs, FINISHED.
      const runDir = join(runsDir, 'sweeps/smoke-grid/trials/trial-000/attempt-1/smoke', runId!);
      expect(JSON.parse(readFileSync(join(runDir, 'meta.json'), 'utf8')).status).toBe('FINISHED');
      const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
      expect(new Set(steps)).toEqual(new Set([1, 2, 3]));

      const status = await runCli(['sweep', 'status', 'smoke-grid', '--queue', url]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/trial-000\s+FINISHED\s+2\s+3\s+[\d.]+\s+b\s+/);
      const unknown = await runCli(['sweep', 'status', 'nope', '--queue', url]);
      expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringContaining('no sweep "nope" on redis://127.0.0.1:')]);
    }
  });

  it('a queue sweep over the plugin example: its trials load ./affine.ts on the worker and finish with the plugin layers in their models', async () => {
    const url = `${server.url.slice(0, -2)}/7`;
    const runsDir = join(dir, 'runs-plugin');
    const worker = exp('worker-plugin', ['worker', '--queue', url, '--runs-dir', runsDir, '--name', 'plugin', '--concurrency', '2']);
    const tiny = ['--set', 'train.epochs=1', '--set', 'data.train_size=64', '--set', 'data.test_size=32'];
    const sweep = exp('sweep-plugin', ['sweep', PLUGIN_SWEEP, '--executor', 'queue', '--queue', url, '--runs-dir', runsDir, ...tiny, '--backend', 'cpu']);
    expect(await exited(sweep), `${log('sweep-plugin')}\n${log('worker-plugin')}`).toBe(0);
    process.kill(-worker.pid!, 'SIGINT');
    await exited(worker);

    const trials = (await sweepStatus(url, 'resmlp-sweep'))!.trials;
    expect(trials.map((t) => [t.id, t.state, t.worker])).toEqual([
      ['trial-000', 'FINISHED', 'plugin'],
      ['trial-001', 'FINISHED', 'plugin'],
    ]);
    for (const trial of trials) {
      expect(log('worker-plugin')).toContain(`resmlp-sweep/${trial.id} attempt 1: finished`);
      const runDir = join(runsDir, 'sweeps/resmlp-sweep/trials', trial.id, 'attempt-1/resmlp_plugin_example', trial.runId!);
      // The plugin's block is in the trained model (5 Affine layers), which names the plugin for predict and serve.
      expect(readFileSync(join(runDir, 'artifacts/model_summary.txt'), 'utf8').match(/\(ExampleAffine\)/g)).toHaveLength(5);
      const modelJson = JSON.parse(readFileSync(join(runDir, 'artifacts/model/model.json'), 'utf8'));
      expect(modelJson.userDefinedMetadata.tessera.plugins).toEqual([join(ROOT, 'examples/plugins/affine.ts')]);
      expect(modelJson.userDefinedMetadata.tessera.config.train.optimizer.learning_rate).toBe(trial.id === 'trial-000' ? 0.003 : 0.01);
      const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
      expect(metrics.find((m) => m.val_loss !== undefined)!.val_loss).toBeCloseTo(trial.result!.val_loss!, 6);
      expect(metrics.some((m) => m.test_accuracy !== undefined)).toBe(true);
    }
  }, 180_000);

  it.skipIf(!mlflow.binary)('a tracked queue sweep in MLflow: one sweep run, each trial run nested under it, matching the Redis trial table', async () => {
    const tracking = await startMlflowServer({ binary: mlflow.binary! });
    const url = `${server.url.slice(0, -2)}/6`;
    try {
      const runsDir = join(dir, 'runs-tracked');
      const env = { MLFLOW_TRACKING_URI: tracking.uri, MLFLOW_EXPERIMENT_NAME: 'queue-sweep' };
      const worker = exp('worker-tracked', ['worker', '--queue', url, '--runs-dir', runsDir, '--name', 'tracked', '--concurrency', '2'], env);
      const sweep = exp(
        'sweep-tracked',
        ['sweep', SMOKE_GRID, '--executor', 'queue', '--queue', url, '--runs-dir', runsDir, '--max-trials', '2', '--set', 'train.epochs=1', '--backend', 'cpu'],
        env,
      );
      expect(await exited(sweep), `${log('sweep-tracked')}\n${log('worker-tracked')}`).toBe(0);
      process.kill(-worker.pid!, 'SIGINT');
      await exited(worker);

      const status = (await sweepStatus(url, 'smoke-grid'))!;
      const table = status.trials;
      expect(table.map((t) => [t.id, t.state, t.worker])).toEqual([
        ['trial-000', 'FINISHED', 'tracked'],
        ['trial-001', 'FINISHED', 'tracked'],
      ]);
      const parentLocalId = status.meta.runId;
      expect(log('sweep-tracked')).toContain(`sweep run ${parentLocalId}: `);

      const mlflowClient = new MlflowClient({ trackingUri: tracking.uri });
      const experiment = await mlflowClient.getExperimentByName('queue-sweep');
      const runs = await mlflowClient.searchAllRuns({ experimentIds: [experiment!.experimentId] });
      const parents = runs.filter((r) => r.data.tags['tessera.sweep'] === 'smoke-grid');
      expect(parents).toHaveLength(1);
      const parent = parents[0]!;
      expect(parent.info.status).toBe('FINISHED');
      expect(parent.data.tags['tessera.run_id']).toBe(parentLocalId);
      const children = runs.filter((r) => r !== parent);
      // One MLflow run per trial of the Redis table: same run id, nested under the sweep's run.
      const byTrial = new Map<string, Run>(children.map((c) => [c.data.tags['sweep.trial']!, c]));
      expect(children).toHaveLength(2);
      expect([...byTrial.keys()].sort()).toEqual(['trial-000', 'trial-001']);
      for (const trial of table) {
        const child = byTrial.get(trial.id)!;
        expect(child.info.status).toBe('FINISHED');
        expect(child.data.tags).toMatchObject({
          'mlflow.parentRunId': parent.info.runId,
          'tessera.parent_run_id': parentLocalId,
          'tessera.run_id': trial.runId,
          'sweep.name': 'smoke-grid',
          'sweep.attempt': '1',
          'sweep.worker': 'tracked',
        });
        const valLoss = child.data.metrics.find((m) => m.key === 'val_loss')!.value;
        expect(valLoss).toBeCloseTo(trial.result!.val_loss!, 6);
      }
      // The best trial the sweep's run names is the child with the lowest val_loss in MLflow.
      const valLoss = (r: Run) => r.data.metrics.find((m) => m.key === 'val_loss')!.value;
      const best = [...children].sort((a, b) => valLoss(a) - valLoss(b))[0]!;
      expect(parent.data.tags.best_trial).toBe(best.data.tags['sweep.trial']);
      expect(parent.data.metrics.find((m) => m.key === 'best_val_loss')!.value).toBeCloseTo(valLoss(best), 6);
    } finally {
      await tracking.stop();
    }
  }, 300_000);
});
