// exp worker and exp sweep --executor queue / status: usage errors in-process, then the real
// binaries end to end (real redis-server, real `exp run` children): a worker killed with kill -9
// mid-trial, its trial resumed by another worker from the checkpoint through `exp run --resume`.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStatus } from '@tessera/core/queue';
import { locateRedisForTests, startRedis, type RedisServer } from '@tessera/core/queue/testing';
import { runCli } from '../test-helpers.ts';

const ROOT = join(import.meta.dirname, '../../../..');
const BIN = join(ROOT, 'packages/cli/src/bin.ts');
const SMOKE_GRID = join(ROOT, 'experiments/sweeps/smoke-grid.yaml');
const redis = locateRedisForTests();

describe('exp worker / exp sweep --executor queue: usage', () => {
  it('needs a Redis URL and says what is wrong with one, without echoing its password', async () => {
    const saved = process.env.TESSERA_QUEUE;
    delete process.env.TESSERA_QUEUE;
    try {
      const none = await runCli(['worker']);
      expect(none.code).toBe(2);
      expect(none.stderr).toContain('--queue redis://HOST:PORT/DB is required (or set TESSERA_QUEUE)');
      const http = await runCli(['worker', '--queue', 'http://queue.lan/0']);
      expect(http.code).toBe(2);
      expect(http.stderr).toContain('--queue expects a redis:// or rediss:// URL, got "http://..."');
      const secret = await runCli(['sweep', SMOKE_GRID, '--executor', 'queue', '--queue', 'redis://me:hunter2@queue.lan/x']);
      expect(secret.code).toBe(2);
      expect(secret.stderr).toContain('the database in redis://***@queue.lan/x must be a number');
      expect(secret.stderr).not.toContain('hunter2');
    } finally {
      if (saved !== undefined) process.env.TESSERA_QUEUE = saved;
    }
  });

  it('rejects a bad --gpus, --concurrency, --executor, and a status without a name', async () => {
    const gpus = await runCli(['worker', '--queue', 'redis://127.0.0.1:1/0', '--gpus', '0,a']);
    expect([gpus.code, gpus.stderr]).toEqual([2, expect.stringContaining('--gpus expects GPU ids like 0,1, got "0,a"')]);
    const concurrency = await runCli(['worker', '--queue', 'redis://127.0.0.1:1/0', '--concurrency', '0']);
    expect([concurrency.code, concurrency.stderr]).toEqual([2, expect.stringContaining('--concurrency expects a whole number > 0, got "0"')]);
    const executor = await runCli(['sweep', SMOKE_GRID, '--executor', 'cloud']);
    expect([executor.code, executor.stderr]).toEqual([2, expect.stringContaining('--executor expects local or queue, got "cloud"')]);
    const extra = await runCli(['sweep', SMOKE_GRID, 'more']);
    expect([extra.code, extra.stderr]).toEqual([2, expect.stringContaining('unexpected argument "more"')]);
  });
});

describe.skipIf(!redis.binary)('exp worker and exp sweep --executor queue (real redis-server, real exp run)', () => {
  let server: RedisServer;
  let dir: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    server = await startRedis({ binary: redis.binary! });
    dir = mkdtempSync(join(tmpdir(), 'tessera-worker-cli-'));
  });
  afterAll(async () => {
    for (const child of children) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // ended already
      }
    }
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `exp ...args` as a process leading its own group, output to `<dir>/<name>.log`. */
  const exp = (name: string, args: string[]): ChildProcess => {
    const out = openSync(join(dir, `${name}.log`), 'a');
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { cwd: ROOT, env: { ...process.env, CI: 'true' }, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    children.push(child);
    return child;
  };
  const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));
  const log = (name: string) => readFileSync(join(dir, `${name}.log`), 'utf8');

  it('a real trial on a worker killed with kill -9 is resumed by another worker from its checkpoint', async () => {
    const url = `${server.url.slice(0, -2)}/5`;
    const runsDir = join(dir, 'runs');
    {
      const first = exp('worker-a', ['worker', '--queue', url, '--runs-dir', runsDir, '--name', 'a', '--lease', '2']);
      const sweep = exp('sweep', ['sweep', SMOKE_GRID, '--executor', 'queue', '--queue', url, '--runs-dir', runsDir, '--max-trials', '1', '--backend', 'cpu']);
      const trial = async () => (await sweepStatus(url, 'smoke-grid'))?.trials[0];
      const deadline = Date.now() + 120_000;
      while (((await trial())?.epochs.length ?? 0) < 1) {
        if (Date.now() > deadline) throw new Error(`no epoch within 120 s\n${log('worker-a')}\n${log('sweep')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const runId = (await trial())!.runId;
      process.kill(-first.pid!, 'SIGKILL');
      exp('worker-b', ['worker', '--queue', url, '--runs-dir', runsDir, '--name', 'b', '--lease', '2']);

      expect(await exited(sweep), log('sweep')).toBe(0);
      expect(log('sweep')).toMatch(/trial-000\s+FINISHED/);
      expect(log('worker-b')).toContain(`smoke-grid/trial-000 attempt 2: started (continuing run ${runId})`);
      expect(log('worker-b')).toContain('smoke-grid/trial-000 attempt 2: finished');
      // The resumed run is the first attempt's run, completed: three epochs, FINISHED.
      const runDir = join(runsDir, 'sweeps/smoke-grid/trials/trial-000/attempt-1/smoke', runId!);
      expect(JSON.parse(readFileSync(join(runDir, 'meta.json'), 'utf8')).status).toBe('FINISHED');
      const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
      expect(new Set(steps)).toEqual(new Set([1, 2, 3]));

      const status = await runCli(['sweep', 'status', 'smoke-grid', '--queue', url]);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/trial-000\s+FINISHED\s+2\s+3\s+[\d.]+\s+b\s+/);
      const unknown = await runCli(['sweep', 'status', 'nope', '--queue', url]);
      expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringContaining('no sweep "nope" on redis://127.0.0.1:')]);
    }
  });
});
