// Fault: a hung (not dead) MLflow server (issue 17, item 8). The server is frozen with SIGSTOP
// once the run has started: tracking calls run in the background with a deadline, so training
// never waits on the server (a tracker that blocked would cost at least one deadline per epoch),
// the run ends while the server is still frozen, and it says `exp sync` will finish the job.
// How much a live server costs a run is a speed question for `pnpm bench`, not for this test. Thawed, `exp sync` brings MLflow up to date: every metric point present once, every
// artifact byte-identical to the local one by digest. (A server killed and restarted mid-run:
// packages/cli/src/commands/sync.test.ts.)
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import { readMetrics, readSyncStates } from '@tessera/core';
import { filesUnder, SMOKE, spawnExp, waitForOutput } from './helpers.ts';

const mlflow = locateMlflowForTests();
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
// Many epochs after the freeze, each of which logs metrics: a tracker that waited on the frozen
// server would wait at least DEADLINE_S per epoch, 24 s in all.
const EPOCHS = 24;
const DEADLINE_S = 1;
const TRAIN = ['--set', `train.epochs=${EPOCHS}`, '--set', 'train.batch_size=8'];

/** Seconds from the run's first line (after MLflow's run exists) to the process's exit. */
async function timedRun(args: string[], env: Record<string, string>, onStarted?: () => void) {
  const proc = spawnExp(args, { env });
  await waitForOutput(proc, (out) => /Run \d{8}-\d{6}-[0-9a-f]{6}:/.test(out), 180_000);
  const started = Date.now();
  onStarted?.();
  const result = await proc.exit;
  return { ...result, seconds: (Date.now() - started) / 1000, runId: /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(result.output)![1]! };
}

describe.skipIf(!mlflow.binary)('fault: MLflow frozen with SIGSTOP mid-run', () => {
  let server: MlflowServerHandle;
  let runsDir: string;
  let frozen = false;
  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary });
    runsDir = mkdtempSync(join(tmpdir(), 'tessera-fault-frozen-'));
  });
  afterAll(async () => {
    if (frozen) process.kill(-server.pgid, 'SIGCONT');
    await server?.stop();
    if (runsDir) rmSync(runsDir, { recursive: true, force: true });
  });

  it('training never waits on it (the run ends while it is still frozen); exp sync then completes MLflow exactly', async () => {
    const base = await timedRun(['run', SMOKE, '--runs-dir', runsDir, ...TRAIN], {});
    expect(base.code, base.output).toBe(0);

    const env = { MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: 'frozen', TESSERA_MLFLOW_DEADLINE: String(DEADLINE_S) };
    const hung = await timedRun(['run', SMOKE, '--runs-dir', runsDir, ...TRAIN], env, () => {
      process.kill(-server.pgid, 'SIGSTOP');
      frozen = true;
    });
    expect(hung.code, hung.output).toBe(0);
    expect(hung.output).toContain(`send it later with: exp sync ${hung.runId}`);
    // Half the time a blocking tracker would lose: a margin no machine load closes (seen: +1.7 s).
    const blocking = EPOCHS * DEADLINE_S;
    expect(hung.seconds - base.seconds, `frozen ${hung.seconds} s vs no server ${base.seconds} s`).toBeLessThan(blocking / 2);

    process.kill(-server.pgid, 'SIGCONT');
    frozen = false;
    const sync = await spawnExp(['sync', '--runs-dir', runsDir], { env }).exit;
    expect(sync.code, sync.output).toBe(0);

    const runDir = join(runsDir, 'smoke', hung.runId);
    const mlflowRunId = (await readSyncStates(runDir))[server.uri]!.runId!;
    const client = new MlflowClient({ trackingUri: server.uri });
    const run = await client.getRun(mlflowRunId);
    expect(run.info.status).toBe('FINISHED');
    const records = await readMetrics(runDir);
    for (const key of ['loss', 'val_loss', 'accuracy', 'test_accuracy']) {
      const steps = (await client.getMetricHistory(mlflowRunId, key)).map((m) => m.step).sort((a, b) => a - b);
      expect(steps, key).toEqual(records.filter((r) => key in r).map((r) => r.step));
    }
    const artifactsDir = join(runDir, 'artifacts');
    for (const file of filesUnder(artifactsDir)) {
      const path = relative(artifactsDir, file).split('\\').join('/');
      expect(sha256(await client.downloadArtifact(mlflowRunId, path)), path).toBe(sha256(readFileSync(file)));
    }
  });
});
