import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../safety/atomic-write.ts';

/**
 * One writer per run. A lease file in the run directory (`lock` for the run's writer,
 * `sync.lock` for `exp sync`) holds the writer's pid, host and a heartbeat the holder refreshes
 * every few seconds. Taking it is an exclusive create (O_EXCL), so of two processes exactly one
 * wins. A holder is dead when, on this host, its pid no longer exists, or, from another host,
 * its heartbeat is older than `staleAfterMs`; a dead holder's lease is taken over by renaming it
 * aside and checking that what was renamed is the very lease judged dead (a lease refreshed in
 * between is put back). A holder that finds its lease gone or replaced stops writing
 * (`lost()` turns true), so even a frozen-then-thawed process cannot write alongside a new one.
 */
export interface LockHolder {
  pid: number;
  host: string;
  /** What holds it: `exp run`, `exp run --resume`, `exp sync`. */
  purpose: string;
  since: string;
  heartbeat: string;
  /** Unique per acquisition: tells a lease from its successor. */
  nonce: string;
}

export interface LockOptions {
  purpose: string;
  /** The file name inside the run directory (default `lock`). */
  name?: string;
  heartbeatMs?: number;
  /** A lease from another host with an older heartbeat is dead (default 30 s). */
  staleAfterMs?: number;
  /** Keep trying for this long while a live holder has it (default 0: refuse at once). */
  waitMs?: number;
}

export class RunLockedError extends Error {
  override name = 'RunLockedError';
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    const age = Math.max(0, Math.round((Date.now() - Date.parse(holder.heartbeat)) / 1000));
    super(
      `run ${dir} is being written by another process: ${holder.purpose}, pid ${holder.pid} on ${holder.host}, ` +
        `since ${holder.since}, last heartbeat ${age}s ago; wait for it to end or stop it (kill ${holder.pid}). ` +
        `A crashed holder's lock is taken over automatically`,
    );
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

/** True when the holder can no longer write: its process is gone, or its heartbeat stopped. */
export function isHolderDead(holder: LockHolder, staleAfterMs = 30_000): boolean {
  if (holder.host === hostname()) return holder.pid !== process.pid && !isProcessAlive(holder.pid);
  return Date.now() - Date.parse(holder.heartbeat) > staleAfterMs;
}

/** Who holds the run's lock now, if anyone alive does. */
export async function currentHolder(dir: string, name = 'lock'): Promise<LockHolder | undefined> {
  const holder = await readHolder(join(dir, name));
  return holder && !isHolderDead(holder) ? holder : undefined;
}

export class RunLock {
  #timer: NodeJS.Timeout | undefined;
  #lost = false;
  #released = false;

  constructor(
    readonly path: string,
    readonly holder: LockHolder,
    heartbeatMs: number,
  ) {
    this.#timer = setInterval(() => void this.#beat(), heartbeatMs);
    this.#timer.unref();
  }

  /** True once another process has taken the lease: the holder must stop writing. */
  get lost(): boolean {
    return this.#lost;
  }

  async #beat(): Promise<void> {
    if (this.#released || this.#lost) return;
    const now = await readHolder(this.path);
    if (now?.nonce !== this.holder.nonce) {
      this.#lost = true;
      return;
    }
    this.holder.heartbeat = new Date().toISOString();
    await writeFileAtomic(this.path, JSON.stringify(this.holder)).catch(() => undefined);
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    const now = await readHolder(this.path);
    if (now?.nonce === this.holder.nonce) await unlink(this.path).catch(() => undefined);
  }
}

async function createExclusive(path: string, holder: LockHolder): Promise<boolean> {
  // Written to a temp file and linked into place: the lease is never seen half-written.
  const temp = `${path}.${holder.nonce}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(JSON.stringify(holder));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/** Takes the run's lease, taking over a dead holder's; throws RunLockedError while a live one has it. */
export async function acquireRunLock(dir: string, options: LockOptions): Promise<RunLock> {
  const path = join(dir, options.name ?? 'lock');
  const heartbeatMs = options.heartbeatMs ?? 5_000;
  const deadline = Date.now() + (options.waitMs ?? 0);
  for (;;) {
    const now = new Date().toISOString();
    const holder: LockHolder = { pid: process.pid, host: hostname(), purpose: options.purpose, since: now, heartbeat: now, nonce: randomBytes(8).toString('hex') };
    if (await createExclusive(path, holder)) return new RunLock(path, holder, heartbeatMs);
    const existing = await readHolder(path);
    if (existing && !isHolderDead(existing, options.staleAfterMs)) {
      if (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      throw new RunLockedError(dir, existing);
    }
    // Dead (or unreadable: a crash between create and write cannot happen, so it is foreign): take it over.
    const aside = `${path}.stale.${randomBytes(4).toString('hex')}`;
    try {
      await rename(path, aside);
    } catch {
      continue; // someone else moved it first; race again for the create
    }
    const moved = await readHolder(aside);
    if (existing && moved && moved.nonce !== existing.nonce) {
      // We moved a lease taken over (or refreshed) by someone else after we judged it: put it back.
      await link(aside, path).catch(() => undefined);
    }
    await unlink(aside).catch(() => undefined);
  }
}
