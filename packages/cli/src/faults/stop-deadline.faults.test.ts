// Fault: a supervisor's SIGTERM to an `exp run` that cannot wind down in time (issue 17, item 9).
// One signal is enough: past its stop deadline (TESSERA_STOP_DEADLINE; here a millisecond, so
// the graceful stop can never make it) the run exits 130 at once, saying so, with its last epoch
// checkpoint and its record whole; `--resume` takes the dead writer's lock over and trains each
// remaining epoch once.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetrics, readRunMeta } from '@tessera/core';
import { SMOKE, spawnExp, waitForOutput } from './helpers.ts';

const runsDir = mkdtempSync(join(tmpdir(), 'tessera-fault-deadline-'));
afterAll(() => rmSync(runsDir, { recursive: true, force: true }));

describe('fault: SIGTERM to exp run past its stop deadline', () => {
  it('exits 130 at the deadline keeping its last checkpoint; --resume then trains each remaining epoch once', async () => {
    const run = spawnExp(['run', SMOKE, '--runs-dir', runsDir, '--set', 'train.epochs=3', '--set', 'train.batch_size=8'], {
      env: { TESSERA_STOP_DEADLINE: '0.001' },
    });
    await waitForOutput(run, (out) => out.includes('Epoch 2/3'));
    run.child.kill('SIGTERM');
    const { code, signal, output } = await run.exit;
    expect(signal, output).toBeNull();
    expect(code, output).toBe(130);
    expect(output).toContain('still stopping after 0.001 s: exiting now; the run keeps its last checkpoint');
    expect(output).not.toMatch(/\n\s+at /);
    const runId = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(output)![1]!;
    const runDir = join(runsDir, 'smoke', runId);
    // Ended by the deadline, not by the run: still RUNNING, with its last epoch's checkpoint.
    expect((await readRunMeta(runDir)).status).toBe('RUNNING');
    // (checkpoint.old if the exit fell between the two renames that replace it: the reader falls back to it too.)
    const saved = ['checkpoint', 'checkpoint.old'].map((dir) => join(runDir, dir, 'state.json')).find((file) => existsSync(file));
    // Epoch 1 (a loaded machine may have let epoch 2 finish before the signal landed: then 2).
    expect([1, 2]).toContain((JSON.parse(readFileSync(saved!, 'utf8')) as { epoch: number }).epoch);

    const resumed = await spawnExp(['run', '--resume', runId, '--runs-dir', runsDir]).exit;
    expect(resumed.code, resumed.output).toBe(0);
    expect((await readRunMeta(runDir)).status).toBe('FINISHED');
    const epochs = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { step: number; loss?: number });
    expect(epochs.filter((r) => r.loss !== undefined).map((r) => r.step)).toEqual([1, 2, 3]);
    expect((await readMetrics(runDir)).map((r) => r.step)).toEqual([1, 2, 3]);
  });
});
