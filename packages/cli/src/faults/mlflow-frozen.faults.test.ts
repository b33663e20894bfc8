// Fault: a hung (not dead) MLflow server (issue 17, item 8). The server is frozen with SIGSTOP
// once the run has started: tracking calls run in the background with a deadline, so the run
// takes about as long as one without any server (within 10%), and says `exp sync` will finish
// the job. Thawed, `exp sync` brings MLflow up to date: every metric point present once, every
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
// Several seconds of training after the freeze: long enough for a 10% comparison, short enough for CI.
const TRAIN = ['--set', 'train.epochs=24', '--set', 'train.batch_size=8'];

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

  it('costs the run nothing (within 10% of a run without a server); exp sync then completes MLflow exactly', async () => {
    const base = await timedRun(['run', SMOKE, '--runs-dir', runsDir, ...TRAIN], {});
    expect(base.code, base.output).toBe(0);

    const env = { MLFLOW_TRACKING_URI: server.uri, MLFLOW_EXPERIMENT_NAME: 'frozen', TESSERA_MLFLOW_DEADLINE: '1' };
    const hung = await timedRun(['run', SMOKE, '--runs-dir', runsDir, ...TRAIN], env, () => {
      process.kill(-server.pgid, 'SIGSTOP');
      frozen = true;
    });
    expect(hung.code, hung.output).toBe(0);
    expect(hung.output).toContain(`send it later with: exp sync ${hung.runId}`);
    expect(hung.seconds, `frozen ${hung.seconds} s vs no server ${base.seconds} s`).toBeLessThan(base.seconds * 1.1);

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
