import { describe, expect, it } from 'vitest';
import { connect, describeQueue, parseRedisUrl, QueueUnreachableError, QueueUrlError, reachable } from './connection.ts';

describe('parseRedisUrl', () => {
  it('reads host, port, database, credentials and TLS', () => {
    expect(parseRedisUrl('redis://queue.lan:6380/3')).toEqual({ host: 'queue.lan', port: 6380, db: 3 });
    expect(parseRedisUrl('redis://queue.lan')).toEqual({ host: 'queue.lan', port: 6379, db: 0 });
    expect(parseRedisUrl('rediss://worker:p%40ss@queue.lan:6379/0')).toEqual({
      host: 'queue.lan',
      port: 6379,
      db: 0,
      username: 'worker',
      password: 'p@ss',
      tls: {},
    });
    expect(parseRedisUrl('redis://:secret@127.0.0.1:6379/1')).toMatchObject({ password: 'secret', db: 1 });
  });

  it('rejects what is not a Redis URL, never echoing a password', () => {
    expect(() => parseRedisUrl('queue.lan:6379')).toThrow(QueueUrlError);
    expect(() => parseRedisUrl('http://queue.lan/0')).toThrow('--queue expects a redis:// or rediss:// URL, got "http://..."');
    const error = (() => {
      try {
        parseRedisUrl('redis://me:hunter2@queue.lan/zero');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).toBe('--queue: the database in redis://me:****@queue.lan/zero must be a number, got "zero"');
    expect(error?.message).not.toContain('hunter2');
    expect(describeQueue('redis://me:hunter2@queue.lan:6379/0')).toBe('redis://me:****@queue.lan:6379/0');
    expect(describeQueue('redis://queue.lan:6379/0')).toBe('redis://queue.lan:6379/0');
  });
});

describe('reachable', () => {
  it('fails with the URL (credentials hidden) and the cause when nothing answers', async () => {
    const url = 'redis://me:hunter2@127.0.0.1:1/0';
    const client = connect(url);
    try {
      const error = await reachable(client, url, 500).then(() => null, (e: unknown) => e as Error);
      expect(error).toBeInstanceOf(QueueUnreachableError);
      expect(error!.message).toMatch(/^cannot reach Redis at redis:\/\/me:\*\*\*\*@127\.0\.0\.1:1\/0 within 0\.5 s \(connect ECONNREFUSED 127\.0\.0\.1:1\)$/);
    } finally {
      client.disconnect();
    }
  });
});
