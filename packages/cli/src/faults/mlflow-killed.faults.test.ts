// Fault: the MLflow server killed (SIGKILL) while a real `exp run` trains, and restarted while the
// same run is still training (issue 17, items 1, 3 and 8). Training goes on through the outage
// with one warning; the run ends with MLflow complete, by its own catch-up or by `exp sync`
// afterwards: one MLflow run for the local run, every metric point present exactly once with the
// local line's timestamp, every param, every artifact byte-identical to the local one by digest.
// The run is frozen (SIGSTOP) while the server restarts, so it is certainly still training when
// the server is back, however slow the machine.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import { LOCAL_RUN_ID_TAG, readMetricPoints, readRunMeta, readSyncStates } from '@tessera/core';
import { filesUnder, SMOKE, spawnExp, waitForOutput } from './helpers.ts';

const mlflow = locateMlflowForTests();
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const EPOCHS = 12;

/** The same server (port, database, artifacts) started again; the port may take a moment to be free. */
async function restart(stopped: MlflowServerHandle): Promise<MlflowServerHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startMlflowServer({ binary: mlflow.binary, dir: stopped.dir, port: stopped.port });
    } catch (error) {
      if (attempt >= 10 || !/address already in use/i.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

describe.skipIf(!mlflow.binary)('fault: MLflow killed mid-run and restarted while the run trains', () => {
  let server: MlflowServerHandle;
  let restarted: MlflowServerHandle | undefined;
  let runsDir: string;
  beforeAll(async () => {
    runsDir = mkdtempSync(join(tmpdir(), 'tessera-fault-killed-'));
    // A folder of our own: the killed server's database and artifacts are the restarted one's.
    server = await startMlflowServer({ binary: mlflow.binary, dir: join(runsDir, 'mlflow') });
  });
  afterAll(async () => {
    await restarted?.stop();
    await server?.stop();
    if (runsDir) rmSync(runsDir, { recursive: true, force: true });
  });

  it('loses nothing and duplicates nothing: one run, every point once with its local time, artifacts identical by digest', async () => {
    // No retries: a refused call takes the tracker offline at once (with retries it may outlast the
    // outage, and the run never notices it).
    const env = { MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: 'killed', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' };
    const run = spawnExp(['run', SMOKE, '--runs-dir', join(runsDir, 'runs'), '--set', `train.epochs=${EPOCHS}`, '--set', 'train.batch_size=8'], { env });
    let frozen = false;
    try {
      await waitForOutput(run, (out) => out.includes(`Epoch 2/${EPOCHS}`), 180_000);
      process.kill(-server.pgid, 'SIGKILL');
      // Training goes on without the server.
      await waitForOutput(run, (out) => out.includes(`Epoch 4/${EPOCHS}`), 180_000);
      process.kill(run.child.pid!, 'SIGSTOP');
      frozen = true;
      restarted = await restart(server);
    } finally {
      if (frozen) process.kill(run.child.pid!, 'SIGCONT');
    }
    const { code, output } = await run.exit;
    expect(code, output).toBe(0);
    expect(output.match(/warning: MLflow/g), output).toHaveLength(1);
    const runId = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(output)![1]!;
    const runDir = join(runsDir, 'runs', 'smoke', runId);

    // Whatever the run's own catch-up did not finish, exp sync does (and says so once it is complete).
    const sync = await spawnExp(['sync', '--runs-dir', join(runsDir, 'runs')], { env }).exit;
    expect(sync.code, sync.output).toBe(0);
    const again = await spawnExp(['sync', runId, '--runs-dir', join(runsDir, 'runs')], { env }).exit;
    expect(again.output).toContain('already up to date');

    const client = new MlflowClient({ trackingUri: server.uri });
    const experiment = await client.getExperimentByName('killed');
    const runs = await client.searchAllRuns({ experimentIds: [experiment!.experimentId], filter: `tags.\`${LOCAL_RUN_ID_TAG}\` = '${runId}'`, runViewType: 'ALL' });
    expect(runs).toHaveLength(1);
    const [mlflowRun] = runs;
    expect(mlflowRun!.info.runId).toBe((await readSyncStates(runDir))[server.uri]!.runId);
    const meta = await readRunMeta(runDir);
    expect(mlflowRun!.info).toMatchObject({ status: 'FINISHED', endTime: Date.parse(meta.endTime!) });

    // Every metric point of every file, once, with the local line's time and value.
    const points = await readMetricPoints(runDir);
    const keys = [...new Set(points.map((p) => p.key))];
    expect(keys).toEqual(expect.arrayContaining(['loss', 'val_loss', 'accuracy', 'test_accuracy']));
    for (const key of keys) {
      const local = points.filter((p) => p.key === key).map((p) => [p.step, Date.parse(p.time), p.value]);
      const remote = (await client.getMetricHistory(mlflowRun!.info.runId, key)).map((m) => [m.step, m.timestamp, m.value]);
      const byStep = (a: (number | null)[], b: (number | null)[]) => a[0]! - b[0]!;
      expect(remote.sort(byStep), key).toEqual(local.sort(byStep));
    }
    expect(points.filter((p) => p.key === 'loss').map((p) => p.step)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));

    const params = JSON.parse(readFileSync(join(runDir, 'params.json'), 'utf8')) as Record<string, unknown>;
    expect(mlflowRun!.data.params).toEqual(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)])));

    const artifactsDir = join(runDir, 'artifacts');
    const files = filesUnder(artifactsDir);
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const path = relative(artifactsDir, file).split('\\').join('/');
      expect(sha256(await client.downloadArtifact(mlflowRun!.info.runId, path)), path).toBe(sha256(readFileSync(file)));
    }
  });
});
