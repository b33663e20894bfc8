// Fault: a local sweep controller killed with SIGKILL (issue 17, item 2). Its trials must not
// train on as orphans: they notice the controller is gone, checkpoint and end KILLED within
// seconds. Running the sweep again resumes them from their checkpoints, with no second writer on
// any run and no epoch trained twice.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { currentHolder, readRunMeta } from '@tessera/core';
import { filesUnder, SMOKE, spawnExp } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-fault-sweep-'));
const runsDir = join(work, 'runs');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every trial run directory of the sweep (one per attempt that started a run). */
function trialRuns(): string[] {
  const trials = join(runsDir, 'sweeps', 'killed', 'trials');
  if (!existsSync(trials)) return [];
  return filesUnder(trials)
    .filter((file) => file.endsWith('meta.json'))
    .map((file) => join(file, '..'));
}

/** Epoch steps written to a run's metrics.jsonl, in order (the test metrics line excluded). */
function epochSteps(runDir: string): number[] {
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean);
  return lines.map((line) => JSON.parse(line) as Record<string, number>).filter((r) => 'loss' in r).map((r) => r.step!);
}

describe('fault: sweep controller killed with SIGKILL', () => {
  it('its trials stop within seconds (KILLED, lock released); the resumed sweep trains no epoch twice', async () => {
    const file = join(work, 'killed.yaml');
    writeFileSync(file, [`experiment: ${SMOKE}`, 'name: killed', 'method: grid', 'objective: {metric: val_loss, goal: minimize}',
      'parameters:', '  train.optimizer.learning_rate: {values: [0.01, 0.003]}', 'parallel: 2', 'seed: 0', ''].join('\n'));
    const args = ['sweep', file, '--runs-dir', runsDir, '--set', 'train.epochs=4', '--set', 'train.batch_size=8'];
    const controller = spawnExp(args);
    // Until both trials have finished an epoch.
    for (const deadline = Date.now() + 180_000; ; await new Promise((r) => setTimeout(r, 200))) {
      const started = trialRuns().filter((dir) => existsSync(join(dir, 'metrics.jsonl')));
      if (started.length === 2) break;
      if (Date.now() > deadline || controller.child.exitCode !== null) throw new Error(`trials did not start:\n${controller.output()}`);
    }
    controller.child.kill('SIGKILL');
    await controller.exit;
    const killedAt = Date.now();
    for (const deadline = killedAt + 60_000; ; await new Promise((r) => setTimeout(r, 250))) {
      const holders = await Promise.all(trialRuns().map((dir) => currentHolder(dir)));
      if (holders.every((h) => h === undefined)) break;
      if (Date.now() > deadline) throw new Error('trials still running 60 s after their controller was killed');
    }
    const stoppedWithin = (Date.now() - killedAt) / 1000;
    expect(stoppedWithin).toBeLessThan(30);
    for (const dir of trialRuns()) expect(['KILLED', 'FINISHED']).toContain((await readRunMeta(dir)).status);

    const resumed = await spawnExp(args).exit;
    expect(resumed.code, resumed.output).toBe(0);
    const runs = trialRuns();
    expect(runs).toHaveLength(2); // resumed in place: no second run per trial
    for (const dir of runs) {
      expect((await readRunMeta(dir)).status).toBe('FINISHED');
      expect(epochSteps(dir)).toEqual([1, 2, 3, 4]);
    }
    expect(readdirSync(join(runsDir, 'sweeps', 'killed', 'trials'))).toHaveLength(2);
  });
});
