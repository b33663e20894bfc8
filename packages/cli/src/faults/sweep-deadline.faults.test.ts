// Fault: a supervisor's SIGTERM to `exp sweep` whose trials cannot stop (frozen with SIGSTOP; a
// hung data loader or device would do the same) (issue 17, item 9). One signal is enough: past its
// deadline (the trials' TESSERA_STOP_DEADLINE plus 30 s) the controller exits 130, saying so. Its
// trials, once they can run again, see it gone and stop at a checkpoint; running the same command
// again finishes every trial in its first run.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHolder, readMetrics, readRunMeta, type LockHolder } from '@tessera/core';
import { filesUnder, SMOKE, spawnExp } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-fault-sweep-deadline-'));
const runsDir = join(work, 'runs');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The run directories of the sweep's trials, once each has a lock (its writer started). */
function trialLocks(): string[] {
  const trials = join(runsDir, 'sweeps', 'frozen', 'trials');
  return existsSync(trials) ? filesUnder(trials).filter((file) => file.endsWith('/lock')) : [];
}

describe('fault: SIGTERM to exp sweep whose trials cannot stop', () => {
  it('exits 130 at its deadline; the trials stop once they can run, and the same command finishes the sweep', async () => {
    const file = join(work, 'frozen.yaml');
    writeFileSync(file, [`experiment: ${SMOKE}`, 'name: frozen', 'method: grid', 'metric: {name: val_loss, goal: minimize}',
      'parameters:', '  train.optimizer.learning_rate: {values: [0.01, 0.003]}', 'parallel: 2', ''].join('\n'));
    const args = ['sweep', file, '--runs-dir', runsDir, '--set', 'train.epochs=3', '--set', 'train.batch_size=8'];
    const env = { TESSERA_STOP_DEADLINE: '1' };
    const controller = spawnExp(args, { env });
    const pids: number[] = [];
    try {
      for (const deadline = Date.now() + 180_000; trialLocks().length < 2; await new Promise((r) => setTimeout(r, 200))) {
        if (Date.now() > deadline || controller.child.exitCode !== null) throw new Error(`trials did not start:\n${controller.output()}`);
      }
      for (const lock of trialLocks()) pids.push((JSON.parse(readFileSync(lock, 'utf8')) as LockHolder).pid);
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      const signalled = Date.now();
      controller.child.kill('SIGTERM');
      const { code, output } = await controller.exit;
      expect(code, output).toBe(130);
      expect(output).toContain('exp sweep: still stopping after 31 s: exiting; run the same command to resume');
      expect((Date.now() - signalled) / 1000).toBeGreaterThanOrEqual(30);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    // Thawed, the trials find their controller gone: they stop, and their locks are free.
    for (const deadline = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 250))) {
      const holders = await Promise.all(trialLocks().map((lock) => currentHolder(join(lock, '..'))));
      if (holders.every((h) => h === undefined)) break;
      if (Date.now() > deadline) throw new Error('trials still running 60 s after their controller exited');
    }

    const resumed = await spawnExp(args).exit;
    expect(resumed.code, resumed.output).toBe(0);
    const runs = filesUnder(join(runsDir, 'sweeps', 'frozen', 'trials')).filter((f) => f.endsWith('meta.json')).map((f) => join(f, '..'));
    expect(runs).toHaveLength(2); // each trial resumed in its first run
    for (const dir of runs) {
      expect((await readRunMeta(dir)).status).toBe('FINISHED');
      expect((await readMetrics(dir)).filter((r) => 'loss' in r).map((r) => r.step)).toEqual([1, 2, 3]);
    }
  }, 300_000);
});
