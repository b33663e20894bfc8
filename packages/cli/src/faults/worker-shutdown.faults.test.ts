// Fault: a supervisor stops `exp worker` with SIGTERM after its Redis went away (issue 17,
// item 9). The graceful hand-back cannot reach Redis; past its deadline the worker exits anyway,
// with no second signal. The process is started the way docs/distributed.md starts it: node on
// the exp bin, not through pnpm (which would not pass SIGTERM on).
import { describe, expect, it } from 'vitest';
import { locateRedisForTests, startRedis } from '@tessera/sweeps/queue/testing';
import { spawnExp, waitForOutput } from './helpers.ts';

const redis = locateRedisForTests();

describe.skipIf(!redis.binary)('fault: SIGTERM to a worker whose Redis is down', () => {
  it('exits within its shutdown deadline (--grace 2: 17 s), saying why', async () => {
    const server = await startRedis({ binary: redis.binary });
    const worker = spawnExp(['worker', '--queue', server.url, '--grace', '2', '--name', 'fault-worker']);
    try {
      await waitForOutput(worker, (out) => out.includes('worker fault-worker: 1 slot(s)'));
      await server.stop(); // SIGKILL: Redis is gone, not shut down politely
      await new Promise((r) => setTimeout(r, 1000));
      const signalled = Date.now();
      worker.child.kill('SIGTERM');
      const { code, signal, output } = await worker.exit;
      const seconds = (Date.now() - signalled) / 1000;
      expect(signal, output).toBeNull();
      expect(code, output).toBe(0);
      expect(seconds, output).toBeLessThan(17 + 10);
      expect(output).toContain('checkpointing the running trials and handing them back to the queue');
    } finally {
      worker.child.kill('SIGKILL');
      await server.stop().catch(() => {});
    }
  });
});
