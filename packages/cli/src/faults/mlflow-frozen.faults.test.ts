// Fault: a hung (not dead) MLflow server (issue 17, item 8). The server is frozen with SIGSTOP
// once the run has started: tracking calls run in the background with a deadline, so training
// never waits on the server, the run ends while the server is still frozen, and it says
// `exp sync` will finish the job. (A tracker that awaited its calls on the training path would
// hold one epoch back by a whole deadline before going offline: the longest pause between two
// epochs' records shows it.) How much a live server costs a run is a speed question, not this
// test's. Thawed, `exp sync` brings MLflow up to date: every metric point present once, every
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
// Many short epochs after the freeze, each of which logs metrics; a deadline far longer than an
// epoch, so that one blocked call would stand out between two epochs' records.
const EPOCHS = 24;
const DEADLINE_S = 4;
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
    // The longest pause between two consecutive epochs' records (or the start and the first epoch), against the same run without a
    // server: a blocked tracking call would add a whole deadline (4 s) to one of them; half of it
    // is a margin that machine load does not close (epochs here take well under a second).
    const longestPause = (runId: string) => {
      // The raw lines, one per epoch (readMetrics merges the test record into the last epoch's).
      const lines = readFileSync(join(runsDir, 'smoke', runId, 'metrics.jsonl'), 'utf8').trim().split('\n');
      const epochs = lines.map((line) => JSON.parse(line) as { time: string; loss?: number }).filter((r) => r.loss !== undefined).map((r) => Date.parse(r.time));
      expect(epochs).toHaveLength(EPOCHS);
      // From the run's start too: a call blocked before the first epoch shows there.
      const { startTime } = JSON.parse(readFileSync(join(runsDir, 'smoke', runId, 'meta.json'), 'utf8')) as { startTime: string };
      const times = [Date.parse(startTime), ...epochs];
      return Math.max(...times.slice(1).map((t, i) => t - times[i]!)) / 1000;
    };
    const [pauseHung, pauseBase] = [longestPause(hung.runId), longestPause(base.runId)];
    expect(pauseHung - pauseBase, `longest pause between epochs: frozen ${pauseHung} s, no server ${pauseBase} s`).toBeLessThan(DEADLINE_S / 2);

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
