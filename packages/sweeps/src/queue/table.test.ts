// The trial table's scripts one by one against a real redis-server: the rules that make results
// exactly-once (attempt tokens, one final write), job ids idempotent, and prunes final.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TrialTable } from './table.ts';
import { locateRedisForTests, startRedis, type RedisServer } from './testing.ts';

const redis = locateRedisForTests();
const trial = { id: 'trial-003', index: 3, params: { 'train.optimizer.learning_rate': 0.1 + 0.2 }, overrides: ['train.optimizer.learning_rate=0.30000000000000004'], experiment: '/x/e.yaml' };

describe.skipIf(!redis.binary)('TrialTable (real redis-server)', () => {
  let server: RedisServer;
  let client: Redis;
  let table: TrialTable;
  beforeAll(async () => {
    server = await startRedis({ binary: redis.binary! });
    client = new Redis({ port: server.port, host: '127.0.0.1' });
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });
  beforeEach(async () => {
    await client.flushdb();
    table = new TrialTable(client, 'toy');
    await client.set(table.keys.lease, JSON.stringify({ token: 'lease-1' }));
  });

  const events = async () =>
    ((await client.xrange(table.keys.events, '-', '+')) as [string, string[]][]).map(([, f]) => `${f[5]}@${f[3]}:${f[9]}`);

  it('enqueue: a new trial is added once; in flight it is attached to; ended it is replayed; killed it is queued again', async () => {
    expect(await table.enqueue('lease-1', trial)).toEqual({ action: 'add', jobId: 'toy.trial-003.1' });
    expect(await table.enqueue('lease-1', trial)).toEqual({ action: 'attach', jobId: 'toy.trial-003.1' });
    const stored = (await table.trial('trial-003'))!;
    expect(stored).toMatchObject({ state: 'QUEUED', params: trial.params, overrides: trial.overrides, enqueues: 1, attempts: 0 });

    await table.stop('trial-003', 'sweep interrupted', 'interrupt');
    expect(await table.enqueue('lease-1', trial)).toEqual({ action: 'add', jobId: 'toy.trial-003.2' });
    // A worker that gets the first job finds it superseded and does not run it.
    expect(await table.claim('trial-003', 'toy.trial-003.1', 't1', 'w')).toEqual({ action: 'ended', detail: 'superseded by job toy.trial-003.2' });
    const claim = await table.claim('trial-003', 'toy.trial-003.2', 't1', 'w');
    expect(claim).toEqual({ action: 'run', attempt: 1, runId: null });
    expect(await table.finish('trial-003', 't1', 'finished', '{"val_loss":0.25}')).toBe(true);
    expect(await table.enqueue('lease-1', trial)).toEqual({ action: 'done', state: 'FINISHED' });
  });

  it('enqueue refuses a controller that no longer holds the lease', async () => {
    await expect(table.enqueue('lease-0', trial)).rejects.toThrow('LEASE this controller no longer holds the sweep lease');
    expect(await table.trial('trial-003')).toBeNull();
  });

  it('only the current attempt reports and finishes, and the result is written once', async () => {
    await table.enqueue('lease-1', trial);
    expect(await table.claim('trial-003', 'toy.trial-003.1', 'old', 'wa')).toMatchObject({ action: 'run', attempt: 1 });
    expect(await table.report('trial-003', 'old', 'started', 0, 'run-a')).toEqual({ stale: false, stop: null });
    expect(await table.report('trial-003', 'old', 'epoch', 1, '{"val_loss":0.1}')).toEqual({ stale: false, stop: null });
    // The job is redelivered (the old worker went silent): a new attempt takes over the same run.
    expect(await table.claim('trial-003', 'toy.trial-003.1', 'new', 'wb')).toEqual({ action: 'run', attempt: 2, runId: 'run-a' });
    expect(await table.report('trial-003', 'old', 'epoch', 2, '{"val_loss":9}')).toEqual({ stale: true, stop: null });
    expect(await table.report('trial-003', 'new', 'epoch', 2, '{"val_loss":0.30000000000000004}')).toEqual({ stale: false, stop: null });
    expect(await table.finish('trial-003', 'old', 'finished', '{"val_loss":9}')).toBe(false);
    expect(await table.finish('trial-003', 'new', 'finished', '{"val_loss":0.30000000000000004}')).toBe(true);
    expect(await table.finish('trial-003', 'new', 'failed', 'late')).toBe(false);
    const stored = (await table.trial('trial-003'))!;
    // Metrics are stored verbatim (no rounding through Lua's number formatting).
    expect(stored).toMatchObject({ state: 'FINISHED', attempts: 2, worker: 'wb', runId: 'run-a', result: { val_loss: 0.30000000000000004 } });
    expect(stored.epochs).toEqual([{ val_loss: 0.1 }, { val_loss: 0.30000000000000004 }]);
    expect(await events()).toEqual(['started@1:run-a', 'epoch@1:{"val_loss":0.1}', 'epoch@2:{"val_loss":0.30000000000000004}', 'finished@2:{"val_loss":0.30000000000000004}']);
  });

  it('a restarted attempt reporting an earlier epoch drops the stale tail', async () => {
    await table.enqueue('lease-1', trial);
    await table.claim('trial-003', 'toy.trial-003.1', 't', 'w');
    for (const e of [1, 2, 3]) await table.report('trial-003', 't', 'epoch', e, `{"e":${e}}`);
    await table.report('trial-003', 't', 'epoch', 2, '{"e":20}');
    expect((await table.trial('trial-003'))!.epochs).toEqual([{ e: 1 }, { e: 20 }]);
  });

  it('a prune reaches the running attempt at its next report and ends the trial for good', async () => {
    await table.enqueue('lease-1', trial);
    await table.claim('trial-003', 'toy.trial-003.1', 't', 'w');
    expect(await table.stop('trial-003', 'median: worse than 0.5', 'prune')).toBe('stopping');
    expect(await table.report('trial-003', 't', 'epoch', 1, '{}')).toEqual({ stale: false, stop: 'median: worse than 0.5' });
    expect(await table.current('trial-003')).toEqual({ token: 't', stop: 'median: worse than 0.5' });
    expect(await table.finish('trial-003', 't', 'killed', 'killed')).toBe(true);
    expect(await table.trial('trial-003')).toMatchObject({ state: 'PRUNED', reason: 'median: worse than 0.5' });
    // Never again: not by a redelivered job, not by a resumed controller.
    expect(await table.claim('trial-003', 'toy.trial-003.1', 't2', 'w')).toEqual({ action: 'ended', detail: 'PRUNED' });
    expect(await table.enqueue('lease-1', trial)).toEqual({ action: 'done', state: 'PRUNED' });
    expect(await table.stop('trial-003', 'again', 'prune')).toBe('noop');
  });

  it('a trial stopped before any worker took it ends at once; a released one waits for the next worker', async () => {
    await table.enqueue('lease-1', trial);
    expect(await table.stop('trial-003', 'asha', 'prune')).toBe('ended');
    expect(await table.trial('trial-003')).toMatchObject({ state: 'PRUNED', reason: 'asha' });
    expect(await events()).toEqual(['killed@0:asha']);

    const other = { ...trial, id: 'trial-004', index: 4 };
    await table.enqueue('lease-1', other);
    await table.claim('trial-004', 'toy.trial-004.1', 't', 'w');
    expect(await table.finish('trial-004', 't', 'released', '')).toBe(true);
    expect(await table.trial('trial-004')).toMatchObject({ state: 'QUEUED', attempts: 1 });
    expect(await table.claim('trial-004', 'toy.trial-004.1', 't2', 'w2')).toMatchObject({ action: 'run', attempt: 2 });
    expect((await table.trials()).map((t) => t.id)).toEqual(['trial-003', 'trial-004']);
  });

  it('the lease is renewed and released only by its holder', async () => {
    expect(await table.renewLease('lease-0', 5000)).toBe(false);
    expect(await table.renewLease('lease-1', 5000)).toBe(true);
    expect(await client.pttl(table.keys.lease)).toBeGreaterThan(4000);
    await table.releaseLease('lease-0');
    expect(await client.exists(table.keys.lease)).toBe(1);
    await table.releaseLease('lease-1');
    expect(await client.exists(table.keys.lease)).toBe(0);
  });
});
