import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireRunLock, currentHolder, RunLockedError } from './run-lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'tessera-lock-'));
afterEach(() => rmSync(join(dir, 'lock'), { force: true }));

/** A process id that no longer exists: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

describe('run lock (one writer per run)', () => {
  it('of two acquirers exactly one wins; the other is told who holds it', async () => {
    const results = await Promise.allSettled([acquireRunLock(dir, { purpose: 'exp run' }), acquireRunLock(dir, { purpose: 'exp run --resume' })]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(RunLockedError);
    expect((lost[0]!.reason as Error).message).toMatch(new RegExp(`pid ${process.pid} on ${hostname()}`));
    const holder = await currentHolder(dir);
    expect(holder?.pid).toBe(process.pid);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireRunLock>>>).value.release();
    expect(await currentHolder(dir)).toBeUndefined();
  });

  it('takes over the lock of a dead holder (same host, pid gone)', async () => {
    const pid = await deadPid();
    const now = new Date().toISOString();
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid, host: hostname(), purpose: 'exp run', since: now, heartbeat: now, nonce: 'old' }));
    const lock = await acquireRunLock(dir, { purpose: 'exp run --resume' });
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('a lease from another host is live while its heartbeat is fresh, dead once it is stale', async () => {
    const fresh = new Date().toISOString();
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 1, host: 'elsewhere', purpose: 'exp run', since: fresh, heartbeat: fresh, nonce: 'a' }));
    await expect(acquireRunLock(dir, { purpose: 'x' })).rejects.toThrow(/pid 1 on elsewhere/);
    const old = new Date(Date.now() - 60_000).toISOString();
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 1, host: 'elsewhere', purpose: 'exp run', since: old, heartbeat: old, nonce: 'b' }));
    const lock = await acquireRunLock(dir, { purpose: 'x', staleAfterMs: 30_000 });
    await lock.release();
  });

  it('a holder whose lease was taken over knows it (lost) and no longer writes the lease', async () => {
    const lock = await acquireRunLock(dir, { purpose: 'exp run', heartbeatMs: 20 });
    const now = new Date().toISOString();
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 1, host: 'elsewhere', purpose: 'thief', since: now, heartbeat: now, nonce: 'thief' }));
    await new Promise((r) => setTimeout(r, 100));
    expect(lock.lost).toBe(true);
    await lock.release();
    expect(JSON.parse(readFileSync(join(dir, 'lock'), 'utf8')).nonce).toBe('thief');
  });
});
