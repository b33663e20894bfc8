// The test helpers themselves: a missing redis-server fails loudly under CI, and a server started
// for tests answers, keeps its data across a restart (AOF) and leaves no process behind.
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { locateRedisForTests, startRedis } from './testing.ts';

const redis = locateRedisForTests();

describe('locateRedisForTests', () => {
  it('skips with a message locally but throws under CI when redis-server is missing', () => {
    const missing = { PATH: '/nonexistent' };
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(locateRedisForTests(missing)).toEqual({ binary: undefined, skipReason: expect.stringContaining('scripts/setup-redis.sh') });
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('skipping the tests against a real redis-server'));
    warn.mockRestore();
    expect(() => locateRedisForTests({ ...missing, CI: 'true' })).toThrow(/queue integration tests cannot run under CI: no redis-server/);
  });
});

describe.skipIf(!redis.binary)('startRedis', () => {
  it('runs with AOF and noeviction, survives a kill -9 restart with its data, and stop() leaves nothing', async () => {
    const server = await startRedis({ binary: redis.binary! });
    const client = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: null });
    client.on('error', () => {});
    try {
      expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      await client.set('k', 'v');
      await server.restart();
      expect(await client.get('k')).toBe('v');
    } finally {
      client.disconnect();
      const pid = server.pid();
      await server.stop();
      expect(() => process.kill(pid, 0)).toThrow();
      expect(existsSync(server.dir)).toBe(false);
    }
  });
});
