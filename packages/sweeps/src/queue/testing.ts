/**
 * Test helpers for the queue executor (not exported from index.ts):
 * - `locateRedisForTests()`: finds `redis-server`; under CI=true a missing one is an error.
 * - `startRedis()`: a real redis-server on a free 127.0.0.1 port in a temp dir, configured as
 *   docs/distributed.md asks for production (AOF on, no RDB snapshots, noeviction), behind
 *   guard.mjs so it dies with the test process; `restart()` kills it (SIGKILL) and starts it again
 *   on the same port and data, `stop()` ends it and removes the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { freePort } from '@tessera/mlflow';

const GUARD = join(import.meta.dirname, 'guard.mjs');

export interface RedisForTests {
  binary: string | undefined;
  skipReason: string | undefined;
}

/** $REDIS_SERVER_BIN, else `redis-server` on PATH; undefined if none. */
export function findRedisServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.REDIS_SERVER_BIN) return existsSync(env.REDIS_SERVER_BIN) ? env.REDIS_SERVER_BIN : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  return undefined;
}

/**
 * For `describe.skipIf(!redis.binary)`. Locally a missing redis-server skips with a message; with
 * CI=true it throws, so a CI that forgot `scripts/setup-redis.sh` fails instead of going green.
 */
export function locateRedisForTests(env: NodeJS.ProcessEnv = process.env): RedisForTests {
  const binary = findRedisServer(env);
  if (binary) return { binary, skipReason: undefined };
  const reason = 'no redis-server in $REDIS_SERVER_BIN or PATH; run `bash scripts/setup-redis.sh` to install it';
  if (env.CI && env.CI !== 'false' && env.CI !== '0') throw new Error(`queue integration tests cannot run under CI: ${reason}`);
  console.warn(`[queue] skipping the tests against a real redis-server: ${reason}`);
  return { binary: undefined, skipReason: reason };
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** The server's pid (the guard leads its process group). */
  pid(): number;
  /** Kills the server outright and starts it again from its append-only file. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(options: { binary?: string } = {}): Promise<RedisServer> {
  const binary = options.binary ?? findRedisServer();
  if (!binary) throw new Error('startRedis: no redis-server found (run scripts/setup-redis.sh)');
  const dir = await mkdtemp(join(tmpdir(), 'tessera-redis-'));
  const port = await freePort();
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction',
    '--daemonize', 'no', '--logfile', join(dir, 'redis.log'),
  ];
  let guard: ChildProcess;
  const launch = async () => {
    guard = spawn(process.execPath, [GUARD, binary, ...args], { detached: true, stdio: 'ignore' });
    await waitForPing(port, guard);
  };
  const kill = async (signal: NodeJS.Signals) => {
    if (guard.exitCode !== null || guard.signalCode !== null) return;
    const exited = new Promise((resolve) => guard.once('exit', resolve));
    try {
      process.kill(-guard.pid!, signal);
    } catch {
      return;
    }
    await exited;
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    dir,
    pid: () => guard.pid!,
    restart: async () => {
      await kill('SIGKILL');
      await launch();
    },
    stop: async () => {
      await kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(port: number, guard: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (guard.exitCode !== null) throw new Error(`redis-server exited with code ${guard.exitCode} before answering PING`);
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not listening yet, or still loading the append-only file
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

