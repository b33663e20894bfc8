// The MLflow tracker's selection and its behaviour with no server at all (a closed port); the
// runs against a real mlflow server are in packages/cli/src/commands/sync.test.ts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import type { MetricInput, MlflowClient } from '@tessera/mlflow';
import { LocalRunStore, readMetrics, readRunMeta, readSystemMetrics } from './local-store.ts';
import { MlflowTracker, createMlflowTracker } from './mlflow-tracker.ts';
import { readSyncStates } from './sync.ts';
import { combineTrackers } from './tracker.ts';

const root = mkdtempSync(join(tmpdir(), 'tessera-mlflow-tracker-'));
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

describe('createMlflowTracker', () => {
  const local = new LocalRunStore(root);
  const locate = () => ({ file: 'exp.yaml', line: 7, col: 8 });

  it('is MLflow when tracking.uri or MLFLOW_TRACKING_URI is set (the file wins), nothing otherwise', () => {
    expect(createMlflowTracker({}, 'smoke', { local, env: {} })).toBeUndefined();
    const fromEnv = createMlflowTracker({}, 'smoke', { local, env: { MLFLOW_TRACKING_URI: 'http://env:5000' } })!;
    expect([fromEnv.client.trackingUri, fromEnv.experiment]).toEqual(['http://env:5000', 'smoke']);
    const named = createMlflowTracker({}, 'smoke', { local, env: { MLFLOW_TRACKING_URI: 'http://env:5000', MLFLOW_EXPERIMENT_NAME: 'cifar' } })!;
    expect(named.experiment).toBe('cifar');
    const fromFile = createMlflowTracker({ uri: 'http://file:5000', experiment: 'mine' }, 'smoke', {
      local,
      env: { MLFLOW_TRACKING_URI: 'http://env:5000', MLFLOW_EXPERIMENT_NAME: 'cifar' },
    })!;
    expect([fromFile.client.trackingUri, fromFile.experiment]).toEqual(['http://file:5000', 'mine']);
  });

  it('refuses credentials in tracking.uri (the config is recorded), located, without the password', () => {
    const error = (() => {
      try {
        createMlflowTracker({ uri: 'http://alice:s3cret-pw@host:5000' }, 'smoke', { local, locate, env: {} });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^exp\.yaml:7:8 tracking\.uri: expected a URI without a user name or password .*MLFLOW_TRACKING_USERNAME/);
    expect(error.message).not.toContain('s3cret-pw');
    expect(() => createMlflowTracker({ uri: 'file:///tmp/mlruns' }, 'smoke', { local, locate, env: {} })).toThrow(/^exp\.yaml:7:8 tracking\.uri: .*file/);
  });
});

describe('MlflowTracker with the server down', () => {
  it('keeps training: one warning, everything in the local store, every missed call in the outbox', async () => {
    const uri = `http://127.0.0.1:${await closedPort()}`;
    const local = new LocalRunStore(root);
    const warnings: string[] = [];
    const tracker = createMlflowTracker({ uri }, 'offline', { local, log: (m) => warnings.push(m), env: { MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' } })!;
    expect(tracker).toBeInstanceOf(MlflowTracker);
    const both = combineTrackers(local, tracker);
    const run = await both.startRun({ experiment: 'offline' });
    await both.logParams({ lr: 0.1 });
    await both.logMetrics({ loss: 2 }, 1);
    await both.logMetrics({ loss: 1 }, 2);
    await both.logArtifact('notes.txt', { bytes: 'hello' });
    await both.endRun('FINISHED');

    expect(warnings[0]).toMatch(new RegExp(`^warning: MLflow \\(${uri}\\) failed on startRun: .*\\nTraining goes on; .*\`exp sync ${run.runId}\``));
    expect(warnings.slice(1)).toEqual([`MLflow is still missing part of run ${run.runId}; send it later with: exp sync ${run.runId}`]);
    expect((await readMetrics(run.dir!)).map((r) => r.loss)).toEqual([2, 1]);
    expect(readFileSync(join(run.dir!, 'artifacts', 'notes.txt'), 'utf8')).toBe('hello');
    expect((await readRunMeta(run.dir!)).status).toBe('FINISHED');
    const state = (await readSyncStates(run.dir!))[uri]!;
    expect(state).toMatchObject({ trackingUri: uri, experimentName: 'offline', pending: true, lastError: expect.stringMatching(/NETWORK_ERROR|connect|ECONNREFUSED|fetch failed/i) });
    expect(state.runId).toBeUndefined();
    expect(state.outbox.map((entry) => entry.call)).toEqual(['startRun', 'logParams', 'logMetrics step 1', 'logMetrics step 2', 'logArtifact notes.txt', 'endRun FINISHED']);
  });
});

describe('MlflowTracker: the first metric MLflow gets', () => {
  /** A client that answers the calls of a run and records each logBatch's metrics as key@step. */
  function recordingClient() {
    const batches: MetricInput[][] = [];
    const client = {
      trackingUri: 'http://127.0.0.1:1',
      getOrCreateExperiment: async () => '1',
      createRun: async () => ({ info: { runId: 'mlflow-run' } }),
      logBatch: async (_runId: string, batch: { metrics?: MetricInput[] }) => void (batch.metrics && batches.push(batch.metrics)),
      setTag: async () => {},
      updateRun: async () => {},
    } as unknown as MlflowClient;
    return { client, keys: () => batches.map((batch) => batch.map((m) => `${m.key}@${m.step}`)), batches };
  }

  it('is an epoch metric: system and per-step samples logged before the first epoch go after it, with their own times', async () => {
    const { client, keys, batches } = recordingClient();
    const local = new LocalRunStore(root);
    const both = combineTrackers(local, new MlflowTracker({ client, experiment: 'e', local, log: () => {} }));
    const run = await both.startRun({ experiment: 'e' });
    await both.logMetrics({ 'system/cpu_utilization_percentage': 50 }, 0);
    await both.logMetrics({ 'step/loss': 3 }, 4);
    const sampledAt = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    await both.logMetrics({ val_loss: 2, loss: 2.5 }, 1);
    await both.logMetrics({ 'system/cpu_utilization_percentage': 60 }, 1);
    await both.endRun('FINISHED');
    // MLflow's compare page plots a run's first metric (a sweep trial logs its objective first).
    expect(keys()).toEqual([['val_loss@1', 'loss@1', 'system/cpu_utilization_percentage@0', 'step/loss@4'], ['system/cpu_utilization_percentage@1']]);
    expect(batches[0]![2]!.timestamp).toBeLessThanOrEqual(sampledAt);
    expect(batches[0]![0]!.timestamp).toBeGreaterThan(sampledAt);
    // The local store wrote each at once.
    expect((await readSystemMetrics(run.dir!)).map((r) => r.step)).toEqual([0, 1]);
  });

  it('a run that ends before its first epoch still sends its samples', async () => {
    const { client, keys } = recordingClient();
    const local = new LocalRunStore(root);
    const both = combineTrackers(local, new MlflowTracker({ client, experiment: 'e', local, log: () => {} }));
    await both.startRun({ experiment: 'e' });
    await both.logMetrics({ 'system/cpu_utilization_percentage': 50 }, 0);
    await both.endRun('FAILED', 'boom');
    expect(keys()).toEqual([['system/cpu_utilization_percentage@0']]);
  });
});
