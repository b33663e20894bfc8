// Sweeps on a queue against a real redis-server, with worker processes on this machine and a
// stand-in for `exp run` (__fixtures__/fake-exp.mjs). Locally a missing redis-server skips these
// tests with a message; under CI=true it fails them (scripts/setup-redis.sh installs it).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readRunMeta } from '@tessera/core';
import type { SweepSpec } from '../spec.ts';
import { TPE_DEFAULTS } from '../tpe.ts';
import { formatSweepStatus, runQueueSweep, SweepLeaseError, sweepStatus } from './controller.ts';
import { sweepKeys } from './table.ts';
import { locateRedisForTests, startRedis, type RedisServer } from './testing.ts';

const redisForTests = locateRedisForTests();
const FIXTURES = join(import.meta.dirname, '__fixtures__');
const ROOT = join(import.meta.dirname, '../../../..');

let server: RedisServer;
let dir: string;
let db = 0;
let url: string;
const workers: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function spec(name: string, extra: Partial<SweepSpec> = {}): SweepSpec {
  return {
    name,
    file: join(dir, `${name}.yaml`),
    experiment: join(dir, 'fake.yaml'),
    baseOverrides: [],
    method: 'grid',
    objective: { metric: 'val_loss', goal: 'minimize', summary: 'last' },
    parameters: [{ path: 'a', distribution: { type: 'categorical', values: Array.from({ length: 12 }, (_, i) => i) } }],
    maxTrials: 12,
    parallel: 4,
    seed: 0,
    maxAttempts: 1,
    earlyTerminate: null,
    bayes: { startupTrials: 10, ...TPE_DEFAULTS },
    ...extra,
  };
}

// Leases and locks: a test process or worker on a busy machine can be held up for seconds (another
// process starting on 2 cores), so none may lapse by accident. Workers and controllers nobody waits
// on keep the long production defaults (a 30 s lock; a 15 s lease), renewed every second. Only a
// worker or controller that a test kills or freezes has a shorter one, long enough to outlast a 5 s
// stall (LOST_AFTER_MS): its expiry is what the test waits for.
const LOST_AFTER_MS = 7000;

interface WorkerConfig {
  concurrency?: number;
  gpus?: string[];
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  epochs?: number;
  epochMs?: number;
}

/** A worker process, leading its own process group (so a test can kill -9 the whole group). */
function startWorker(name: string, config: WorkerConfig = {}): ChildProcess {
  const out = openSync(join(dir, `${name}.log`), 'a');
  const options = {
    url,
    name,
    concurrency: config.concurrency ?? 1,
    gpus: config.gpus ?? [],
    runsDir: join(dir, 'runs'),
    lockDurationMs: config.lockDurationMs ?? 30_000,
    stalledIntervalMs: config.stalledIntervalMs ?? 500,
    checkMs: 200,
    graceMs: 5000,
    pollMs: 50,
    env: { FAKE_LOG: join(dir, 'fake.log'), FAKE_EPOCHS: String(config.epochs ?? 3), FAKE_EPOCH_MS: String(config.epochMs ?? 50) },
  };
  const child = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'worker-main.ts')], {
    cwd: ROOT,
    env: { ...process.env, TEST_WORKER: JSON.stringify(options) },
    stdio: ['ignore', out, out],
    detached: true,
  });
  closeSync(out);
  workers.push(child);
  return child;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // gone already
  }
}

/** Every `exp run` start the fake recorded: {pid, run, resumed, from, args, gpu}. */
function fakeRuns(): { pid: number; run: string; resumed: boolean; from: number; args: string[]; gpu: string | null }[] {
  const file = join(dir, 'fake.log');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const trialOf = (run: { args: string[] }) => run.args.find((a) => a.startsWith('a='));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function processGroup(pid: number): number {
  return Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)], { encoding: 'utf8' }).trim());
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The stream's final events per trial: exactly one each is "results recorded exactly once". */
async function finalEvents(client: Redis, sweep: string): Promise<Map<string, string[]>> {
  const entries = (await client.xrange(sweepKeys(sweep).events, '-', '+')) as [string, string[]][];
  const ends = new Map<string, string[]>();
  for (const [, flat] of entries) {
    const f: Record<string, string> = {};
    for (let i = 0; i < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
    if (f.kind === 'finished' || f.kind === 'failed' || f.kind === 'killed') ends.set(f.trial!, [...(ends.get(f.trial!) ?? []), `${f.kind}@${f.attempt}`]);
  }
  return ends;
}

describe.skipIf(!redisForTests.binary)('sweeps on a Redis queue (real redis-server, worker processes)', () => {
  let client: Redis;
  beforeAll(async () => {
    server = await startRedis({ binary: redisForTests.binary! });
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-queue-'));
    db += 1; // each test its own database: its own queue, trial tables and workers
    url = `redis://127.0.0.1:${server.port}/${db}`;
    client = new Redis({ port: server.port, host: '127.0.0.1', db, maxRetriesPerRequest: null });
    client.on('error', () => {}); // reconnects by itself while a test restarts the server
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) {
      if (w.exitCode === null && w.signalCode === null) {
        const exited = new Promise((resolve) => w.once('exit', resolve));
        killGroup(w, 'SIGCONT');
        killGroup(w, 'SIGKILL');
        await exited;
      }
    }
    client.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a 12-trial grid over 3 workers: every trial has exactly one final result; status shows trials and workers', async () => {
    startWorker('w1', { concurrency: 2, gpus: ['0', '1'] });
    startWorker('w2', { concurrency: 2 });
    startWorker('w3', { concurrency: 1 });
    const result = await runQueueSweep(spec('grid12'), { url, statePath: join(dir, 'state.json') });

    expect(result.state.trials.map((t) => t.state)).toEqual(Array(12).fill('FINISHED'));
    // val_loss = (1 + a) / epoch after 3 epochs, a = the trial's index.
    expect(result.state.trials.map((t) => t.finalMetric)).toEqual(Array.from({ length: 12 }, (_, a) => (1 + a) / 3));
    expect(result.best?.id).toBe('trial-000');
    const ends = await finalEvents(client, 'grid12');
    expect([...ends.values()]).toEqual(Array(12).fill(['finished@1']));
    const runs = fakeRuns();
    expect(runs).toHaveLength(12);
    expect(new Set(runs.map(trialOf)).size).toBe(12);
    // w1 hands out its GPUs (CUDA_VISIBLE_DEVICES); the others set none.
    const workerOf = new Map((await sweepStatus(url, 'grid12'))!.trials.map((t) => [`a=${t.index}`, t.worker]));
    for (const run of runs) {
      if (workerOf.get(trialOf(run)!) === 'w1') expect(['0', '1']).toContain(run.gpu);
      else expect(run.gpu).toBeNull();
    }
    // Exactly 12 jobs were ever added, and the stream was read to the end.
    expect((await client.keys('bull:tessera-trials:grid12.trial-*')).filter((k) => /\.\d+$/.test(k)).sort()).toEqual(
      Array.from({ length: 12 }, (_, i) => `bull:tessera-trials:grid12.trial-${String(i).padStart(3, '0')}.1`),
    );
    const status = (await sweepStatus(url, 'grid12'))!;
    expect(status.trials.map((t) => [t.state, t.attempts])).toEqual(Array(12).fill(['FINISHED', 1]));
    expect(status.workers.map((w) => w.name).sort()).toEqual(['w1', 'w2', 'w3']);
    expect(status.events.pending).toBe(0);
    expect(status.controller).toBeNull(); // released at the end
    const text = formatSweepStatus(status);
    expect(text).toContain('trials: 12 (12 FINISHED)');
    expect(text).toMatch(/trial-011\s+FINISHED\s+1\s+3\s+4\s+w[123]/);
  });

  it('a worker killed mid-trial (kill -9 of its process group): redelivered after its lease expires, resumed from its checkpoint', async () => {
    const a = startWorker('wa', { epochs: 6, epochMs: 300, lockDurationMs: LOST_AFTER_MS });
    const one = spec('crash', { parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0] } }], maxTrials: 1, parallel: 1 });
    const sweep = runQueueSweep(one, { url, statePath: join(dir, 'state.json') });
    await waitFor('two epochs', async () => (await client.hlen(sweepKeys('crash').epochs('trial-000'))) >= 2);
    const [first] = fakeRuns();
    killGroup(a, 'SIGKILL');
    // The trial ran in its own process group; its guard saw the worker die and killed it.
    await waitFor('the orphaned run to be killed', () => !alive(first!.pid));
    const checkpointed = Number(await client.hlen(sweepKeys('crash').epochs('trial-000')));
    startWorker('wb', { epochs: 6, epochMs: 100 });
    const result = await sweep;

    expect(result.state.trials[0]).toMatchObject({ state: 'FINISHED', finalMetric: 1 / 6 });
    expect(result.state.trials[0]!.epochs.map((e) => e.val_loss)).toEqual([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6]);
    const runs = fakeRuns();
    expect(runs).toHaveLength(2);
    // The second attempt continued the same run from its checkpoint: at least the epochs reported
    // (the orphan may have finished one more in the moments before its guard killed it).
    expect(runs[1]).toMatchObject({ run: first!.run, resumed: true });
    expect(runs[1]!.from).toBeGreaterThanOrEqual(checkpointed);
    expect(await finalEvents(client, 'crash')).toEqual(new Map([['trial-000', ['finished@2']]]));
    const status = (await sweepStatus(url, 'crash'))!;
    expect(status.trials[0]).toMatchObject({ state: 'FINISHED', attempts: 2, worker: 'wb' });
  });

  it('a frozen worker (SIGSTOP past its lease) cannot complete the trial a second time', async () => {
    const a = startWorker('wa', { epochs: 8, epochMs: 250, lockDurationMs: LOST_AFTER_MS });
    const one = spec('frozen', { parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0] } }], maxTrials: 1, parallel: 1 });
    const sweep = runQueueSweep(one, { url, statePath: join(dir, 'state.json') });
    await waitFor('two epochs', async () => (await client.hlen(sweepKeys('frozen').epochs('trial-000'))) >= 2);
    const [first] = fakeRuns();
    const trialGroup = processGroup(first!.pid);
    // Freeze the worker and its trial (a paused VM): no lock renewal, no progress.
    process.kill(a.pid!, 'SIGSTOP');
    process.kill(-trialGroup, 'SIGSTOP');
    startWorker('wb', { epochs: 8, epochMs: 50 });
    const result = await sweep;
    expect(result.state.trials[0]).toMatchObject({ state: 'FINISHED', finalMetric: 1 / 8 });
    expect(await finalEvents(client, 'frozen')).toEqual(new Map([['trial-000', ['finished@2']]]));

    // Thaw the old trial and let it run to its end, then the old worker: it must not record it.
    process.kill(-trialGroup, 'SIGCONT');
    await waitFor('the old run to end', () => !alive(first!.pid));
    process.kill(a.pid!, 'SIGCONT');
    await waitFor('the old worker to give up', () => /attempt 1: (lost the trial|finished but rejected)/.test(readFileSync(join(dir, 'wa.log'), 'utf8')));
    await sleep(500);
    expect(await finalEvents(client, 'frozen')).toEqual(new Map([['trial-000', ['finished@2']]]));
    const trial = (await sweepStatus(url, 'frozen'))!.trials[0]!;
    expect(trial).toMatchObject({ state: 'FINISHED', attempts: 2, worker: 'wb', result: { val_loss: 1 / 8 } });
  });

  it('a worker held up for 5 s (a busy machine) keeps its trial, though another worker checks for stalled trials every 0.5 s', async () => {
    const a = startWorker('wa', { epochs: 12, epochMs: 250, lockDurationMs: LOST_AFTER_MS });
    const one = spec('held', { parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0] } }], maxTrials: 1, parallel: 1 });
    const sweep = runQueueSweep(one, { url, statePath: join(dir, 'state.json') });
    await waitFor('an epoch', async () => (await client.hlen(sweepKeys('held').epochs('trial-000'))) >= 1);
    startWorker('wb');
    await waitFor('the other worker', async () => ((await sweepStatus(url, 'held'))?.workers.length ?? 0) === 2);
    // Only the worker's own process: its event loop stops (no lock renewal), its trial runs on.
    process.kill(a.pid!, 'SIGSTOP');
    await sleep(5000);
    process.kill(a.pid!, 'SIGCONT');
    const result = await sweep;
    expect(result.state.trials[0]).toMatchObject({ state: 'FINISHED', finalMetric: 1 / 12 });
    expect(fakeRuns()).toHaveLength(1);
    expect(await finalEvents(client, 'held')).toEqual(new Map([['trial-000', ['finished@1']]]));
    expect((await sweepStatus(url, 'held'))!.trials[0]).toMatchObject({ attempts: 1, worker: 'wa' });
    expect(readFileSync(join(dir, 'wa.log'), 'utf8')).not.toMatch(/lost the trial|stalled/);
  });

  it('a controller killed and resumed elsewhere (from Redis alone) adds no duplicate jobs and continues the same sweep run; a second controller is refused while one holds the lease', async () => {
    startWorker('w1', { concurrency: 2, epochs: 3, epochMs: 150 });
    startWorker('w2', { concurrency: 2, epochs: 3, epochMs: 150 });
    const grid = spec('ctl');
    writeFileSync(grid.file, 'experiment: fake.yaml\nmethod: grid\n'); // the sweep run keeps it as sweep.yaml
    const statePath = join(dir, 'state.json');
    // The sweep's own run, in a local store both "machines" see (as a shared runs dir would be).
    const runsDir = join(dir, 'sweep-runs');
    const out = openSync(join(dir, 'controller.log'), 'a');
    const controller = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'controller-main.ts')], {
      cwd: ROOT,
      env: { ...process.env, TEST_CONTROLLER: JSON.stringify({ spec: grid, url, statePath, leaseMs: LOST_AFTER_MS, runsDir }) },
      stdio: ['ignore', out, out],
      detached: true,
    });
    closeSync(out);
    workers.push(controller);
    const finished = async () => (await sweepStatus(url, 'ctl'))?.trials.filter((t) => t.state === 'FINISHED').length ?? 0;
    await waitFor('four finished trials', async () => (await finished()) >= 4);

    const second = runQueueSweep(grid, { url, statePath: join(dir, 'other.json') });
    await expect(second).rejects.toBeInstanceOf(SweepLeaseError);
    await expect(second).rejects.toThrow(/sweep "ctl" on redis:\/\/127\.0\.0\.1:\d+\/\d+ is already controlled by pid \d+ on .* its lease expires in \d+ s/);

    killGroup(controller, 'SIGKILL');
    // The first controller opened the sweep's run and kept its id beside the trial table.
    const parent = (await client.hget(sweepKeys('ctl').meta, 'runId'))!;
    expect(parent).toMatch(/\S/);
    expect((await readRunMeta(join(runsDir, 'fake', parent))).status).toBe('RUNNING');
    await waitFor('its lease to expire', async () => (await client.exists(sweepKeys('ctl').lease)) === 0);
    // Resumed on "another machine": without the first controller's state file, from Redis alone.
    const tracking = { runsDir, experiment: 'fake', tracking: {}, createTracker: () => undefined };
    const result = await runQueueSweep(grid, { url, statePath: join(dir, 'moved', 'state.json'), tracking });
    expect(result.state.runId).toBe(parent);
    const parentMeta = await readRunMeta(join(runsDir, 'fake', parent));
    expect(parentMeta.status).toBe('FINISHED');
    expect(parentMeta.resumedAt).toHaveLength(1);
    expect(readdirSync(join(runsDir, 'fake'))).toEqual([parent]);

    expect(result.state.trials.map((t) => [t.state, t.finalMetric])).toEqual(Array.from({ length: 12 }, (_, a) => ['FINISHED', (1 + a) / 3]));
    const jobs = (await client.keys('bull:tessera-trials:ctl.trial-*')).filter((k) => /\.\d+$/.test(k));
    expect(jobs.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `bull:tessera-trials:ctl.trial-${String(i).padStart(3, '0')}.1`));
    const runs = fakeRuns();
    expect(runs.map(trialOf).sort()).toEqual(Array.from({ length: 12 }, (_, a) => `a=${a}`).sort());
    expect(runs.every((r) => !r.resumed)).toBe(true);
    // Every trial, whichever controller queued it, ran as a child of that one run, with its sweep tags.
    for (const run of runs) {
      const trial = `trial-${trialOf(run)!.slice(2).padStart(3, '0')}`;
      expect(run.args.join(' ')).toContain(`--parent-run ${parent} --tag sweep.name=ctl --tag sweep.trial=${trial} --tag sweep.attempt=1`);
    }
    expect([...(await finalEvents(client, 'ctl')).values()]).toEqual(Array(12).fill(['finished@1']));
  });

  it('Redis restarted (append-only file) mid-sweep loses no sweep state', async () => {
    startWorker('w1', { concurrency: 2, epochs: 3, epochMs: 150 });
    startWorker('w2', { concurrency: 2, epochs: 3, epochMs: 150 });
    const sweep = runQueueSweep(spec('aof'), { url, statePath: join(dir, 'state.json'), leaseMs: 10_000 });
    const table = async () => (await sweepStatus(url, 'aof'))?.trials ?? [];
    await waitFor('three finished trials', async () => (await table()).filter((t) => t.state === 'FINISHED').length >= 3);
    const before = await table();
    await server.restart();
    const after = await table();
    // Every acknowledged write survived: finished trials are unchanged, running ones kept their epochs.
    expect(after.slice(0, before.length).map((t) => t.id)).toEqual(before.map((t) => t.id));
    for (const [i, trial] of before.entries()) {
      if (trial.state === 'FINISHED') expect(after[i]).toEqual(trial);
      else expect(after[i]!.epochs.slice(0, trial.epochs.length)).toEqual(trial.epochs);
    }
    const result = await sweep;
    expect(result.state.trials.map((t) => [t.state, t.finalMetric])).toEqual(Array.from({ length: 12 }, (_, a) => ['FINISHED', (1 + a) / 3]));
    expect([...(await finalEvents(client, 'aof')).values()].map((ends) => ends.filter((e) => e.startsWith('finished')).length)).toEqual(Array(12).fill(1));
  });

  it('a pruned trial stops within one epoch on its worker and is never retried', async () => {
    startWorker('w1', { concurrency: 2, epochs: 8, epochMs: 400 });
    const pruning = spec('prune', {
      parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0, 10] } }],
      maxTrials: 2,
      parallel: 1, // trial-000's curve is complete when trial-001 is judged
      earlyTerminate: { type: 'median', minEpochs: 2, minTrials: 1 },
    });
    const statePath = join(dir, 'state.json');
    const result = await runQueueSweep(pruning, { url, statePath });
    const [good, bad] = result.state.trials;
    expect(good).toMatchObject({ state: 'FINISHED', finalMetric: 1 / 8 });
    expect(bad!.state).toBe('PRUNED');
    expect(bad!.reason).toMatch(/^median/);
    // Decided at epoch 2 (min_epochs); the worker saw the stop at the next epoch event at the latest.
    expect(bad!.epochs.length).toBeGreaterThanOrEqual(2);
    expect(bad!.epochs.length).toBeLessThanOrEqual(3);
    const stored = (await sweepStatus(url, 'prune'))!.trials[1]!;
    expect(stored).toMatchObject({ state: 'PRUNED', attempts: 1 });
    expect(stored.reason).toBe(bad!.reason);

    // Resuming the sweep (state file or not) runs nothing again.
    const again = await runQueueSweep(pruning, { url, statePath: join(dir, 'fresh-state.json') });
    expect(again.state.trials.map((t) => t.state)).toEqual(['FINISHED', 'PRUNED']);
    expect(again.state.trials[1]!.finalMetric).toBe(bad!.finalMetric);
    expect(fakeRuns().map(trialOf)).toEqual(['a=0', 'a=10']);
    expect(await finalEvents(client, 'prune')).toEqual(new Map([['trial-000', ['finished@1']], ['trial-001', ['killed@1']]]));
  });

  it('an interrupted controller stops its trials at a checkpoint; resumed, they continue where they stopped', async () => {
    startWorker('w1', { concurrency: 2, epochs: 6, epochMs: 250 });
    const two = spec('interrupt', { parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0, 1] } }], maxTrials: 2, parallel: 2 });
    const statePath = join(dir, 'state.json');
    const keys = sweepKeys('interrupt');
    const abort = new AbortController();
    const first = runQueueSweep(two, { url, statePath, signal: abort.signal });
    await waitFor('two epochs of each trial', async () => (await client.hlen(keys.epochs('trial-000'))) >= 2 && (await client.hlen(keys.epochs('trial-001'))) >= 2);
    abort.abort();
    const stopped = await first;
    expect(stopped.interrupted).toBe(true);
    expect(stopped.state.trials.map((t) => t.state)).toEqual(['KILLED', 'KILLED']);
    expect((await sweepStatus(url, 'interrupt'))!.trials.map((t) => t.state)).toEqual(['KILLED', 'KILLED']);

    const resumed = await runQueueSweep(two, { url, statePath });
    expect(resumed.state.trials.map((t) => [t.state, t.finalMetric, t.epochs.length])).toEqual([
      ['FINISHED', 1 / 6, 6],
      ['FINISHED', 2 / 6, 6],
    ]);
    const runs = fakeRuns();
    expect(runs).toHaveLength(4);
    // Each trial started once afresh and once resuming its own run from a checkpoint of epoch >= 2.
    const fresh = runs.filter((r) => !r.resumed);
    expect(fresh.map(trialOf).sort()).toEqual(['a=0', 'a=1']);
    for (const run of fresh) expect(runs.find((r) => r.resumed && r.run === run.run)?.from).toBeGreaterThanOrEqual(2);
    expect(await finalEvents(client, 'interrupt')).toEqual(
      new Map([
        ['trial-000', ['killed@1', 'finished@2']],
        ['trial-001', ['killed@1', 'finished@2']],
      ]),
    );
  });

  it('a worker stopped with Ctrl-C checkpoints its trial and hands it back; another worker continues it', async () => {
    const a = startWorker('wa', { epochs: 6, epochMs: 250 });
    const one = spec('handback', { parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0] } }], maxTrials: 1, parallel: 1 });
    const sweep = runQueueSweep(one, { url, statePath: join(dir, 'state.json') });
    await waitFor('two epochs', async () => (await client.hlen(sweepKeys('handback').epochs('trial-000'))) >= 2);
    const exited = new Promise<number | null>((resolve) => a.once('exit', resolve));
    process.kill(a.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(readFileSync(join(dir, 'wa.log'), 'utf8')).toContain('handback/trial-000 attempt 1: checkpointed and released to the queue (worker shutting down)');
    startWorker('wb', { epochs: 6, epochMs: 50 });
    const result = await sweep;
    expect(result.state.trials[0]).toMatchObject({ state: 'FINISHED', finalMetric: 1 / 6 });
    const runs = fakeRuns();
    expect(runs).toHaveLength(2);
    expect(runs[1]).toMatchObject({ run: runs[0]!.run, resumed: true });
    expect(await finalEvents(client, 'handback')).toEqual(new Map([['trial-000', ['finished@2']]]));
  });

  it('a controller that loses its lease to another stops without touching the trials', async () => {
    // Far longer than the test: the trial must still be running when the controller gives up.
    startWorker('w1', { concurrency: 1, epochs: 100, epochMs: 200 });
    const one = spec('deposed', { parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0] } }], maxTrials: 1, parallel: 1 });
    const keys = sweepKeys('deposed');
    // Renewed every second: the takeover is noticed within one.
    const sweep = runQueueSweep(one, { url, statePath: join(dir, 'state.json'), leaseMs: LOST_AFTER_MS });
    const outcome = sweep.then(() => null, (error: unknown) => error as Error);
    await waitFor('an epoch', async () => (await client.hlen(keys.epochs('trial-000'))) >= 1);
    // Another controller took the sweep over (as if this one had been frozen past its lease).
    await client.set(keys.lease, JSON.stringify({ token: 'other', host: 'elsewhere', pid: 1, since: 'now' }), 'PX', 60_000);
    const error = await outcome;
    expect(error).toBeInstanceOf(SweepLeaseError);
    expect(error!.message).toContain('sweep "deposed": this controller lost its lease');
    // The trial runs on, undisturbed, and the other controller's lease is left alone.
    const trial = (await sweepStatus(url, 'deposed'))!.trials[0]!;
    expect([trial.state, trial.stop]).toEqual(['RUNNING', null]);
    expect(JSON.parse((await client.get(keys.lease))!).token).toBe('other');
  });

  it('--gpus: trials running at once on a worker get different CUDA_VISIBLE_DEVICES', async () => {
    startWorker('w1', { concurrency: 2, gpus: ['2', '5'], epochs: 3, epochMs: 300 });
    const two = spec('gpus', { parameters: [{ path: 'a', distribution: { type: 'categorical', values: [0, 1] } }], maxTrials: 2, parallel: 2 });
    const result = await runQueueSweep(two, { url, statePath: join(dir, 'state.json') });
    expect(result.state.trials.map((t) => t.state)).toEqual(['FINISHED', 'FINISHED']);
    expect(fakeRuns().map((r) => r.gpu).sort()).toEqual(['2', '5']);
  });
});
