// Fault: sync that duplicates or goes stale (issue 17, items 1 and 3), against a real MLflow
// server. Two `exp sync` of the same never-synced run at once, ten times over: exactly one MLflow
// run each time. A best model rewritten at the same size while MLflow was unreachable: `exp sync`
// sends it again, and afterwards every artifact in MLflow is byte-identical to the local one.
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import { readMetricPoints, readSyncStates, updateSyncState } from '@tessera/core';
import { filesUnder, SMOKE, spawnExp, waitForOutput } from './helpers.ts';

const mlflow = locateMlflowForTests();
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(!mlflow.binary)('fault: sync duplicates or goes stale', () => {
  let server: MlflowServerHandle;
  let client: MlflowClient;
  let work: string;
  let offlineStore: string;
  let offlineRun: string;

  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary });
    client = new MlflowClient({ trackingUri: server.uri });
    work = mkdtempSync(join(tmpdir(), 'tessera-fault-sync-'));
    offlineStore = join(work, 'offline');
    const run = await spawnExp(['run', SMOKE, '--runs-dir', offlineStore, '--set', 'train.epochs=2', '--set', 'train.steps_per_epoch=2']).exit;
    expect(run.code, run.output).toBe(0);
    offlineRun = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(run.output)![1]!;
  });
  afterAll(async () => {
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A copy of the offline run's store, synced once to MLflow experiment `name`. */
  async function syncedCopy(name: string): Promise<{ store: string; runDir: string; env: Record<string, string> }> {
    const store = join(work, name);
    cpSync(offlineStore, store, { recursive: true });
    const env = { MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: name };
    const first = await spawnExp(['sync', offlineRun, '--runs-dir', store], { env }).exit;
    expect(first.code, first.output).toBe(0);
    return { store, runDir: join(store, 'smoke', offlineRun), env };
  }

  it('two exp sync at once, 10 times: exactly one MLflow run each time', async () => {
    for (let round = 0; round < 10; round++) {
      const store = join(work, `round-${round}`);
      cpSync(offlineStore, store, { recursive: true });
      const env = { MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: `concurrent-${round}` };
      const results = await Promise.all([0, 1].map(() => spawnExp(['sync', offlineRun, '--runs-dir', store], { env }).exit));
      for (const result of results) expect(result.code, result.output).toBe(0);
      const experiment = await client.getExperimentByName(`concurrent-${round}`);
      const runs = await client.searchAllRuns({ experimentIds: [experiment!.experimentId], runViewType: 'ALL' });
      expect(runs, `round ${round}`).toHaveLength(1);
      expect(results.map((r) => r.output).join('\n').match(/\(created\)/g)).toHaveLength(1);
    }
  });

  it('a recorded MLflow run that was deleted (a create race\'s loser) is not written to: the surviving run is found by its tag', async () => {
    const { store, runDir, env } = await syncedCopy('deleted');
    const survivor = (await readSyncStates(runDir))[server.uri]!.runId!;
    // A live run's tracker created a second run for the same local run and recorded it; a concurrent
    // sync's race resolution deleted it (the larger id loses).
    const experiment = await client.getExperimentByName('deleted');
    const loser = await client.createRun({ experimentId: experiment!.experimentId, runName: 'loser', startTime: Date.now(), tags: { 'tessera.run_id': offlineRun } });
    await client.deleteRun(loser.info.runId);
    await updateSyncState(runDir, server.uri, (state) => ({ ...state!, runId: loser.info.runId, pending: true }));
    const again = await spawnExp(['sync', '--runs-dir', store], { env }).exit;
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain(`${offlineRun} -> MLflow run ${survivor}:`);
    expect((await readSyncStates(runDir))[server.uri]).toMatchObject({ runId: survivor, pending: false });
    const active = await client.searchAllRuns({ experimentIds: [experiment!.experimentId], runViewType: 'ACTIVE_ONLY' });
    expect(active.map((r) => r.info.runId)).toEqual([survivor]);
  });

  it('exp sync of a run while it trains and tracks live (as exp ui does): one run, every point once, FINISHED, nothing pending', async () => {
    const store = join(work, 'live');
    const env = { MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: 'live' };
    const run = spawnExp(['run', SMOKE, '--runs-dir', store, '--set', 'train.epochs=30', '--set', 'train.batch_size=8'], { env });
    await waitForOutput(run, (out) => /Run \d{8}-\d{6}-[0-9a-f]{6}:/.test(out), 180_000);
    const runId = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(run.output())![1]!;
    let syncs = 0;
    while (run.child.exitCode === null) {
      const sync = await spawnExp(['sync', runId, '--runs-dir', store], { env }).exit;
      expect(sync.code, sync.output).toBe(0);
      syncs++;
    }
    const { code, output } = await run.exit;
    expect(code, output).toBe(0);
    expect(syncs).toBeGreaterThan(0);
    // After the end, the run is complete in MLflow: by its own tracker, or by the next exp sync if one overlapped its end.
    const after = await spawnExp(['sync', '--runs-dir', store], { env }).exit;
    expect(after.code, after.output).toBe(0);
    const runDir = join(store, 'smoke', runId);
    expect((await readSyncStates(runDir))[server.uri]).toMatchObject({ pending: false, outbox: [] });
    const experiment = await client.getExperimentByName('live');
    const runs = await client.searchAllRuns({ experimentIds: [experiment!.experimentId], runViewType: 'ALL' });
    expect(runs).toHaveLength(1);
    expect(runs[0]!.info.status).toBe('FINISHED');
    const points = await readMetricPoints(runDir);
    for (const key of [...new Set(points.map((p) => p.key))]) {
      const remote = (await client.getMetricHistory(runs[0]!.info.runId, key)).map((m) => [m.step, m.timestamp]).sort((a, b) => a[0]! - b[0]!);
      expect(remote, key).toEqual(points.filter((p) => p.key === key).map((p) => [p.step, Date.parse(p.time)]).sort((a, b) => a[0]! - b[0]!));
    }
  });

  it('a best model rewritten at the same size is sent again; MLflow ends byte-identical to local by digest', async () => {
    const { store, runDir, env } = await syncedCopy('stale');
    // A later epoch's best model, recorded while MLflow was unreachable: same size, other bytes.
    const weights = join(runDir, 'artifacts', 'best_model', 'weights.bin');
    const bytes = readFileSync(weights);
    const changed = Buffer.from(bytes.map((b) => b ^ 0xff));
    expect(changed.length).toBe(bytes.length);
    writeFileSync(weights, changed);
    await updateSyncState(runDir, server.uri, (state) => ({ ...state!, pending: true, outbox: [{ time: new Date().toISOString(), call: 'logArtifact best_model/weights.bin' }] }));
    const second = await spawnExp(['sync', '--runs-dir', store], { env }).exit;
    expect(second.code, second.output).toBe(0);
    expect(second.output).toMatch(/sent .*1 artifacts/);
    const mlflowRunId = (await readSyncStates(runDir))[server.uri]!.runId!;
    const artifactsDir = join(runDir, 'artifacts');
    const local = filesUnder(artifactsDir);
    expect(local.length).toBeGreaterThan(5);
    for (const file of local) {
      const path = relative(artifactsDir, file).split('\\').join('/');
      expect(sha256(await client.downloadArtifact(mlflowRunId, path)), path).toBe(sha256(readFileSync(file)));
    }
    const third = await spawnExp(['sync', offlineRun, '--runs-dir', store], { env }).exit;
    expect(third.output).toContain('already up to date');
    // Cut short on the server (a disk filled there, a hand edit): MLflow lists another size, so it is sent again.
    const onServer = filesUnder(server.artifactsDir).find((file) => file.endsWith(`${mlflowRunId}/artifacts/best_model/weights.bin`))!;
    truncateSync(onServer, 10);
    const fourth = await spawnExp(['sync', offlineRun, '--runs-dir', store], { env }).exit;
    expect(fourth.output).toMatch(/sent 1 artifacts/);
    expect(sha256(await client.downloadArtifact(mlflowRunId, 'best_model/weights.bin'))).toBe(sha256(changed));
  });
});
