// The MLflow tracker's selection and its behaviour with no server at all (a closed port); the
// runs against a real mlflow server are in packages/cli/src/commands/sync.test.ts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { LocalRunStore, readMetrics, readRunMeta } from './local-store.ts';
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
