// Fault: torn and failed writes (issue 17, items 6 and 10). A torn last line in metrics.jsonl
// (power loss mid-write) must cost that line only: `exp runs` lists the whole store, a FINISHED
// run stays FINISHED, a resume repairs the file before appending. A full disk (a 256 KB tmpfs)
// leaves the previous artifact intact, never a truncated one, and no temp file; a read-only
// store is still listed, and a run into it fails with a clear message.
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalRunStore, readMetrics, readRunMeta } from '@tessera/core';
import { runCli } from '../test-helpers.ts';
import { filesUnder, SMOKE, spawnExp } from './helpers.ts';

const runsDir = mkdtempSync(join(tmpdir(), 'tessera-fault-torn-'));
const mounts: string[] = [];
afterAll(() => {
  for (const dir of mounts) execFileSync('umount', [dir]);
  rmSync(runsDir, { recursive: true, force: true });
});

/** `dir` and every directory below it. */
function dirsUnder(dir: string): string[] {
  return [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => dirsUnder(join(dir, e.name)))];
}

/** A size-limited tmpfs at a fresh directory, or the reason it cannot be mounted here. */
function tmpfs(size: string): { dir: string } | { reason: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-fault-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    mounts.push(dir);
    return { dir };
  } catch (error) {
    return { reason: `cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]}); the atomic-write unit test simulates ENOSPC instead` };
  }
}

describe('fault: torn and failed writes', () => {
  it('a torn last metrics line: exp runs lists the store (one warning), FINISHED stays FINISHED', async () => {
    const { code, output } = await spawnExp(['run', SMOKE, '--runs-dir', runsDir, '--set', 'train.epochs=2']).exit;
    expect(code, output).toBe(0);
    const runId = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(output)![1]!;
    const runDir = join(runsDir, 'smoke', runId);
    appendFileSync(join(runDir, 'metrics.jsonl'), '{"step":3,"time":"2026-12-05T00:00:00.000Z","loss":0.12');
    const runs = await runCli(['runs', '--runs-dir', runsDir]);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(new RegExp(`${runId}\\s+\\S+\\s+smoke\\s+FINISHED\\s+2\\s`));
    expect(runs.stderr.match(/ignored a torn line/g)).toHaveLength(1);
    expect(runs.stderr).toContain('metrics.jsonl:4'); // lines 1-3: two epochs and the test metrics
    const resume = await runCli(['run', '--resume', runId, '--runs-dir', runsDir]);
    expect(resume.code).toBe(2);
    expect((await readRunMeta(runDir)).status).toBe('FINISHED');
  });

  it('a torn line in a stopped run is cut off by --resume, which then appends whole lines', async () => {
    const stopped = new LocalRunStore(runsDir);
    const run = await stopped.startRun({ experiment: 'torn' });
    await stopped.logMetrics({ loss: 1 }, 1);
    await stopped.endRun('KILLED');
    appendFileSync(join(run.dir!, 'metrics.jsonl'), '{"step":2,"lo');
    const notes: string[] = [];
    const resumed = new LocalRunStore(runsDir, { log: (m) => notes.push(m) });
    await resumed.startRun({ experiment: 'torn', resumeRunId: run.runId });
    await resumed.logMetrics({ loss: 0.5 }, 2);
    await resumed.endRun('FINISHED');
    expect(notes).toHaveLength(1);
    expect((await readMetrics(run.dir!)).map((r) => [r.step, r.loss])).toEqual([[1, 1], [2, 0.5]]);
  });

  it('a full disk (256 KB tmpfs) keeps the previous artifact whole and leaves no temp file', async (context) => {
    const fs = tmpfs('256k');
    if ('reason' in fs) return context.skip(fs.reason);
    const store = new LocalRunStore(fs.dir);
    const run = await store.startRun({ experiment: 'full' });
    const first = new Uint8Array(100 * 1024).fill(1);
    await store.logArtifact('plots/loss.png', { bytes: first });
    await expect(store.logArtifact('plots/loss.png', { bytes: new Uint8Array(200 * 1024).fill(2) })).rejects.toThrow(/ENOSPC/);
    expect(readFileSync(join(run.dir!, 'artifacts', 'plots', 'loss.png')).equals(Buffer.from(first))).toBe(true);
    expect(filesUnder(fs.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    await store.endRun('FAILED', 'disk full');
    expect((await readRunMeta(run.dir!)).status).toBe('FAILED');
  });

  it('a real exp run that fills its disk (100 KB tmpfs): exit 1 without a stack, every record whole; resumed once there is room, it finishes', async (context) => {
    const fs = tmpfs('100k');
    if ('reason' in fs) return context.skip(fs.reason);
    const run = await spawnExp(['run', SMOKE, '--runs-dir', fs.dir, '--set', 'train.epochs=2']).exit;
    expect(run.code, run.output).toBe(1);
    expect(run.output).toMatch(/exp run: .*ENOSPC: no space left on device/);
    expect(run.output).not.toMatch(/\n\s+at /);
    const runId = /Run (\d{8}-\d{6}-[0-9a-f]{6}):/.exec(run.output)![1]!;
    const runDir = join(fs.dir, 'smoke', runId);
    // Whatever was written is whole: JSON records parse, metric lines are whole, no artifact is empty.
    for (const file of filesUnder(runDir)) {
      const text = readFileSync(file);
      if (file.endsWith('.json') && !file.includes('checkpoint.writing')) expect(() => JSON.parse(text.toString()), file).not.toThrow();
      if (file.includes('/artifacts/')) expect(text.length, file).toBeGreaterThan(0);
    }
    expect(readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')).toMatch(/^(\{[^\n]*\}\n)*$/);
    execFileSync('mount', ['-o', 'remount,size=2m', fs.dir]);
    const resumed = await spawnExp(['run', '--resume', runId, '--runs-dir', fs.dir]).exit;
    expect(resumed.code, resumed.output).toBe(0);
    expect((await readRunMeta(runDir)).status).toBe('FINISHED');
    expect((await readMetrics(runDir)).map((r) => r.step)).toEqual([1, 2]);
  });

  it('a read-only store is still listed; a run into it fails with a clear message, exit 1, no stack', async (context) => {
    // A read-only mount; where mounting is not allowed, file modes (which bind every user but root).
    let fs = tmpfs('1m');
    if ('reason' in fs) {
      if (process.getuid?.() === 0) return context.skip(`${fs.reason}; and file modes cannot stop root`);
      fs = { dir: mkdtempSync(join(runsDir, 'read-only-')) };
    }
    const store = new LocalRunStore(fs.dir);
    await store.startRun({ experiment: 'ro' });
    await store.logMetrics({ loss: 1 }, 1);
    await store.endRun('FINISHED');
    if (mounts.includes(fs.dir)) execFileSync('mount', ['-o', 'remount,ro', fs.dir]);
    else for (const path of [...filesUnder(fs.dir), ...dirsUnder(fs.dir)]) chmodSync(path, statSync(path).isDirectory() ? 0o555 : 0o444);
    const runs = await runCli(['runs', '--runs-dir', fs.dir]);
    expect(runs.code).toBe(0);
    expect(runs.stdout).toMatch(/ro\s+FINISHED\s+1/);
    const run = await runCli(['run', SMOKE, '--runs-dir', fs.dir, '--set', 'train.epochs=1']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot create run directory .* \(is the run store .* read-only, full or missing\?\)/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(join(fs.dir, 'smoke')) ? readdirSync(join(fs.dir, 'smoke')) : []).toEqual([]);
    if (!mounts.includes(fs.dir)) for (const dir of dirsUnder(fs.dir)) chmodSync(dir, 0o755); // so that afterAll can remove it
  });
});
