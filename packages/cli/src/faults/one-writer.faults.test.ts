// Fault: two writers on one run (issue 17, item 2). Two `exp run --resume ID` at once: exactly
// one trains, the other is refused naming the holder, and no epoch is written twice. A holder
// killed with SIGKILL leaves its lock behind: the next --resume takes it over. A FINISHED run is
// not resumed (its test evaluation is not rerun) unless --epochs extends it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetrics, readRunMeta } from '@tessera/core';
import { SMOKE, spawnExp, waitForOutput } from './helpers.ts';

const runsDir = mkdtempSync(join(tmpdir(), 'tessera-fault-writer-'));
afterAll(() => rmSync(runsDir, { recursive: true, force: true }));
// Long enough per epoch to be interrupted in the middle of one.
const LONG = ['--set', 'train.epochs=3', '--set', 'train.batch_size=8'];

/** Every step written to metrics.jsonl, in order, duplicates kept. */
function writtenSteps(runDir: string): number[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { step: number }).step);
}

/** A run killed with SIGKILL in its second epoch: its lock and checkpoint stay behind. */
async function killedRun(): Promise<{ runId: string; runDir: string }> {
  const first = spawnExp(['run', SMOKE, '--runs-dir', runsDir, ...LONG]);
  await waitForOutput(first, (out) => out.includes('Epoch 2/'));
  first.child.kill('SIGKILL');
  await first.exit;
  const runId = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(first.output())![1]!;
  return { runId, runDir: join(runsDir, 'smoke', runId) };
}

describe('fault: one writer per run', () => {
  it('after kill -9, two concurrent --resume: one takes the dead lock over and trains, the other is refused naming it', async () => {
    const { runId, runDir } = await killedRun();
    expect((await readRunMeta(runDir)).status).toBe('RUNNING'); // killed: nobody wrote an end
    const a = spawnExp(['run', '--resume', runId, '--runs-dir', runsDir]);
    const b = spawnExp(['run', '--resume', runId, '--runs-dir', runsDir]);
    const [ra, rb] = await Promise.all([a.exit, b.exit]);
    const codes = [ra.code, rb.code].sort();
    expect(codes, `${ra.output}\n----\n${rb.output}`).toEqual([0, 1]);
    const refused = ra.code === 1 ? ra.output : rb.output;
    const winner = ra.code === 0 ? a : b;
    expect(refused).toMatch(new RegExp(`is being written by another process: exp run --resume, pid ${winner.child.pid} on \\S+`));
    expect((await readRunMeta(runDir)).status).toBe('FINISHED');
    const steps = writtenSteps(runDir);
    // Each epoch once (the test metrics go to the last epoch's step as a separate line).
    expect(steps.filter((s) => s < 3)).toEqual([...new Set(steps.filter((s) => s < 3))]);
    expect((await readMetrics(runDir)).map((r) => r.step)).toEqual([1, 2, 3]);
  });

  it('a FINISHED run is not resumed (exit 2, nothing rewritten) unless --epochs extends it', async () => {
    const done = spawnExp(['run', SMOKE, '--runs-dir', runsDir, '--set', 'train.epochs=1']);
    const { code, output } = await done.exit;
    expect(code, output).toBe(0);
    const runId = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(output)![1]!;
    const runDir = join(runsDir, 'smoke', runId);
    const before = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8');
    const again = await spawnExp(['run', '--resume', runId, '--runs-dir', runsDir]).exit;
    expect(again.code).toBe(2);
    expect(again.output).toContain(`run ${runId} is FINISHED (1 epoch(s)); --resume continues it only when --epochs extends it beyond 1`);
    expect((await readRunMeta(runDir)).status).toBe('FINISHED');
    expect(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).toBe(before);
    const extended = await spawnExp(['run', '--resume', runId, '--runs-dir', runsDir, '--epochs', '2']).exit;
    expect(extended.code, extended.output).toBe(0);
    expect((await readMetrics(runDir)).map((r) => r.step)).toEqual([1, 2]);
  });
});
