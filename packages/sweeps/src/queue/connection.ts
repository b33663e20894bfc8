import { redactSecrets } from '@tessera/core';
import { Redis, type RedisOptions } from 'ioredis';

/** A `--queue` value that is not a Redis URL: a usage error the CLI prints without a stack. */
export class QueueUrlError extends Error {
  override name = 'QueueUrlError';
}

/**
 * `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS) as ioredis options.
 * The password never appears in errors or logs: see `describeQueue`.
 */
export function parseRedisUrl(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new QueueUrlError(`--queue expects a Redis URL like redis://HOST:6379/0, got "${redactSecrets(url)}"`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new QueueUrlError(`--queue expects a redis:// or rediss:// URL, got "${parsed.protocol}//..."`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new QueueUrlError(`--queue: the database in ${describeQueue(url)} must be a number, got "${db}"`);
  return {
    host: parsed.hostname || '127.0.0.1',
    port: parsed.port ? Number(parsed.port) : 6379,
    db: db === '' ? 0 : Number(db),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** The URL without its credentials, for messages. */
export function describeQueue(url: string): string {
  return redactSecrets(url);
}

/** Redis did not answer: a wrong host or port, a firewall, a stopped server. */
export class QueueUnreachableError extends Error {
  override name = 'QueueUnreachableError';
}

/**
 * Waits for PING, so that a wrong URL fails at once with a clear message instead of commands
 * waiting forever for a server that never comes (connections retry without limit, by design).
 */
export async function reachable(client: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  let last = '';
  const remember = (error: Error) => (last = error.message);
  client.on('error', remember);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new QueueUnreachableError(`cannot reach Redis at ${describeQueue(url)} within ${timeoutMs / 1000} s${last ? ` (${last})` : ''}`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    client.off('error', remember);
  }
}

/**
 * A connection for commands. `maxRetriesPerRequest: null` keeps commands queued while Redis
 * restarts (BullMQ needs it for blocking calls; the controller and workers ride out a restart).
 */
export function connect(url: string, extra: RedisOptions = {}): Redis {
  const client = new Redis({ ...parseRedisUrl(url), maxRetriesPerRequest: null, ...extra });
  // Reconnects are automatic; a failed command rejects where it was issued.
  client.on('error', () => {});
  return client;
}
