// Fault: a supervisor stops `exp worker` with SIGTERM after its Redis went away (issue 17,
// item 9). The graceful hand-back cannot reach Redis; past its deadline the worker exits anyway,
// with no second signal. The process is started the way docs/distributed.md starts it: node on
// the exp bin, not through pnpm (which would not pass SIGTERM on). With a trial running, the trial
// must not outlive the worker either: it stops at a checkpoint (or is killed at the deadline), and
// another worker resumes it from there once its lease expires.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHolder, isProcessAlive, readRunMeta, type LockHolder } from '@tessera/core';
import { sweepStatus } from '@tessera/sweeps/queue';
import { locateRedisForTests, startRedis } from '@tessera/sweeps/queue/testing';
import { filesUnder, ROOT, spawnExp, waitForOutput } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-fault-worker-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const redis = locateRedisForTests();

describe.skipIf(!redis.binary)('fault: SIGTERM to a worker whose Redis is down', () => {
  it('exits within its shutdown deadline (--grace 2: 17 s), saying why', async () => {
    const server = await startRedis({ binary: redis.binary });
    const worker = spawnExp(['worker', '--queue', server.url, '--grace', '2', '--name', 'fault-worker']);
    try {
      await waitForOutput(worker, (out) => out.includes('worker fault-worker: 1 slot(s)'));
      await server.stop(); // SIGKILL: Redis is gone, not shut down politely
      await new Promise((r) => setTimeout(r, 1000));
      const signalled = Date.now();
      worker.child.kill('SIGTERM');
      const { code, signal, output } = await worker.exit;
      const seconds = (Date.now() - signalled) / 1000;
      expect(signal, output).toBeNull();
      expect(code, output).toBe(0);
      expect(seconds, output).toBeLessThan(17 + 10);
      expect(output).toContain('checkpointing the running trials and handing them back to the queue');
    } finally {
      worker.child.kill('SIGKILL');
      await server.stop().catch(() => {});
    }
  });

  it('with a trial running: the worker exits within its deadline and the trial does not outlive it (stopped at a checkpoint, lock released)', async () => {
    const server = await startRedis({ binary: redis.binary });
    const runsDir = join(work, 'runs');
    const worker = spawnExp(['worker', '--queue', server.url, '--grace', '2', '--name', 'busy-worker', '--runs-dir', runsDir]);
    const controller = spawnExp([
      'sweep', join(ROOT, 'experiments/sweeps/smoke-grid.yaml'), '--executor', 'queue', '--queue', server.url, '--runs-dir', runsDir,
      '--max-trials', '1', '--set', 'train.epochs=200', '--set', 'train.batch_size=8',
    ]);
    try {
      for (const deadline = Date.now() + 180_000; ((await sweepStatus(server.url, 'smoke-grid'))?.trials[0]?.epochs.length ?? 0) < 1; await new Promise((r) => setTimeout(r, 200))) {
        if (Date.now() > deadline) throw new Error(`no epoch within 180 s\n${worker.output()}\n${controller.output()}`);
      }
      const lockFile = filesUnder(join(runsDir, 'sweeps')).find((file) => file.endsWith('/lock'))!;
      const runDir = join(lockFile, '..');
      const trialPid = (JSON.parse(readFileSync(lockFile, 'utf8')) as LockHolder).pid;
      expect(isProcessAlive(trialPid)).toBe(true);
      controller.child.kill('SIGKILL'); // only the worker is under test
      await server.stop(); // Redis gone
      const signalled = Date.now();
      worker.child.kill('SIGTERM');
      const { code, output } = await worker.exit;
      expect(code, output).toBe(0);
      expect((Date.now() - signalled) / 1000, output).toBeLessThan(17 + 10);
      // No orphan: the trial ended (at a checkpoint, within --grace) or was killed at the deadline.
      for (const deadline = Date.now() + 10_000; isProcessAlive(trialPid); await new Promise((r) => setTimeout(r, 100))) {
        if (Date.now() > deadline) throw new Error(`trial ${trialPid} outlived its worker:\n${output}`);
      }
      expect(existsSync(join(runDir, 'checkpoint')) || existsSync(join(runDir, 'checkpoint.old'))).toBe(true);
      expect(['KILLED', 'RUNNING']).toContain((await readRunMeta(runDir)).status);
      expect(await currentHolder(runDir)).toBeUndefined(); // the next worker's --resume is not refused
    } finally {
      controller.child.kill('SIGKILL');
      worker.child.kill('SIGKILL');
      await server.stop().catch(() => {});
    }
  });
});
