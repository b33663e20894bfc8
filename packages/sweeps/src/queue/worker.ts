import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Worker, type Job } from 'bullmq';
import type { TrialLaunch, TrialSink } from '../executor.ts';
import { sweepDir } from '../launch.ts';
import { LocalProcessExecutor } from '../local-executor.ts';
import { connect, describeQueue, reachable } from './connection.ts';
import { QUEUE_NAME, TrialTable, WORKERS_KEY, workerKey, type TrialJob } from './table.ts';

const GUARD = join(import.meta.dirname, 'guard.mjs');

export interface QueueWorkerOptions {
  /** `redis://HOST:PORT/DB`. */
  url: string;
  /** The `exp` command line before its subcommand (see LocalExecutorOptions.command). */
  command: readonly string[];
  /** Trials at once. */
  concurrency?: number;
  /** GPU ids handed out round-robin as CUDA_VISIBLE_DEVICES, one per running trial. */
  gpus?: readonly string[];
  /**
   * Root of the run store. Trial runs go to `<runsDir>/sweeps/<sweep>/trials/<trial>/attempt-<n>/`;
   * share it between machines (NFS) so that a trial redelivered to another worker resumes from its
   * checkpoint instead of starting over.
   */
  runsDir?: string;
  /** Shown in `exp sweep status` and stored on each attempt (default `<host>-<pid>`). */
  name?: string;
  /**
   * The BullMQ lock on a running trial (default 30 s): a worker silent this long loses the trial.
   * It is renewed every second (a quarter of it when shorter), so a worker whose event loop is
   * held up (a busy machine) keeps its trials unless it stalls for nearly the whole lock.
   */
  lockDurationMs?: number;
  /** How often this worker looks for trials whose worker vanished (default: lockDurationMs, at most 5 s). */
  stalledIntervalMs?: number;
  /** How often a running trial's lease and stop request are checked between epochs (default 1 s). */
  checkMs?: number;
  /** After a cooperative stop (SIGINT), how long before SIGKILL (default 60 s). */
  graceMs?: number;
  /**
   * The whole shutdown's deadline (default graceMs + 15 s): past it, trials still running are
   * killed (their last epoch checkpoint stands; their lease expires and another worker resumes
   * them) and the worker returns even if Redis never answers again. A supervisor's SIGTERM is
   * then always enough.
   */
  shutdownDeadlineMs?: number;
  /** How often a running trial's run record is read (default 250 ms). */
  pollMs?: number;
  /** Extra environment for every trial. */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Aborting shuts the worker down: running trials checkpoint and go back to the queue. */
  signal?: AbortSignal;
}

interface Active {
  executor: LocalProcessExecutor;
  trial: string;
  lost: boolean;
  lose: (why: string) => void;
}

/**
 * `exp worker`: pulls trials of any sweep from the queue and runs each as an `exp run` child (through
 * guard.mjs, in its own process group), reporting its run, every epoch and its outcome to the trial
 * table. Resolves when the worker has shut down.
 */
export async function runQueueWorker(options: QueueWorkerOptions): Promise<void> {
  const log = options.log ?? (() => {});
  const name = options.name ?? `${hostname()}-${process.pid}`;
  const concurrency = options.concurrency ?? 1;
  const gpus = options.gpus ?? [];
  const lockDuration = options.lockDurationMs ?? 30_000;
  const redis = connect(options.url);
  await reachable(redis, options.url).catch((error: unknown) => {
    redis.disconnect();
    throw error;
  });
  const tables = new Map<string, TrialTable>();
  const tableOf = (sweep: string): TrialTable => {
    let table = tables.get(sweep);
    if (!table) tables.set(sweep, (table = new TrialTable(redis, sweep)));
    return table;
  };
  const active = new Map<string, Active>(); // by job id
  const gpuInUse = new Map<number, number>(); // gpu index -> trials on it
  let shuttingDown = false;

  const pickGpu = (): number | null => {
    if (gpus.length === 0) return null;
    let best = 0;
    for (let i = 1; i < gpus.length; i++) if ((gpuInUse.get(i) ?? 0) < (gpuInUse.get(best) ?? 0)) best = i;
    gpuInUse.set(best, (gpuInUse.get(best) ?? 0) + 1);
    return best;
  };

  const runTrial = async (job: Job<TrialJob>): Promise<string> => {
    const data = job.data;
    const table = tableOf(data.sweep);
    const token = randomUUID();
    const claim = await table.claim(data.trial, job.id!, token, name);
    if (claim.action !== 'run') {
      log(`${data.sweep}/${data.trial}: not run (${claim.action === 'gone' ? 'no such trial' : claim.detail})`);
      return 'skipped';
    }
    const gpu = pickGpu();
    const executor = new LocalProcessExecutor({
      command: [process.execPath, GUARD, ...options.command],
      trialsDir: join(sweepDir({ name: data.sweep, experiment: data.experiment }, options.runsDir), 'trials'),
      extraArgs: data.runArgs,
      env: { ...options.env, ...(gpu !== null ? { CUDA_VISIBLE_DEVICES: gpus[gpu] } : {}) },
      pollMs: options.pollMs ?? 250,
      killAfterMs: options.graceMs ?? 60_000,
      detached: true,
      stopSignal: 'SIGINT',
    });
    const launch: TrialLaunch = {
      sweep: data.sweep,
      id: data.trial,
      index: data.index,
      experiment: data.experiment,
      params: {},
      overrides: data.overrides,
      attempt: claim.attempt,
      previousRunId: claim.runId,
      tags: { ...data.tags, 'sweep.attempt': String(claim.attempt), 'sweep.worker': name },
      ...(data.parentRunId ? { parentRunId: data.parentRunId } : {}),
    };
    const label = `${data.sweep}/${data.trial} attempt ${claim.attempt}`;
    log(`${label}: started${claim.runId ? ` (continuing run ${claim.runId})` : ''}${gpu !== null ? ` on GPU ${gpus[gpu]}` : ''}`);

    let stopRequested = false;
    const entry: Active = {
      executor,
      trial: data.trial,
      lost: false,
      lose: (why) => {
        if (entry.lost) return;
        entry.lost = true;
        log(`${label}: lost the trial (${why}); killing its run`);
        executor.kill(data.trial);
      },
    };
    active.set(job.id!, entry);
    const onStop = (reason: string | null) => {
      if (!reason || stopRequested || entry.lost) return;
      stopRequested = true;
      log(`${label}: stopping (${reason})`);
      void executor.stop(data.trial, reason);
    };

    // Sink calls arrive synchronously; a chain keeps their Redis writes in order.
    let chain = Promise.resolve();
    const then = (work: () => Promise<void>) => {
      chain = chain.then(work).catch((error: unknown) => log(`${label}: reporting failed: ${(error as Error).message}`));
    };
    type Outcome = { kind: 'finished' | 'failed' | 'killed'; data: string };
    let end!: (outcome: Outcome) => void;
    const ended = new Promise<Outcome>((resolve) => (end = resolve));
    const sink: TrialSink = {
      started: (runId) =>
        then(async () => {
          const r = await table.report(data.trial, token, 'started', 0, runId);
          if (r.stale) entry.lose('another attempt holds it');
        }),
      epoch: (epoch, metrics) =>
        then(async () => {
          // For queue dashboards (BullMQ's job progress); the sweep itself reads the stream.
          void job.updateProgress({ epoch, ...metrics }).catch(() => {});
          const r = await table.report(data.trial, token, 'epoch', epoch, JSON.stringify(metrics));
          if (r.stale) entry.lose('another attempt holds it');
          else onStop(r.stop);
        }),
      finished: (metrics) => then(async () => end({ kind: 'finished', data: JSON.stringify(metrics) })),
      failed: (error) => then(async () => end({ kind: 'failed', data: error })),
      killed: () => then(async () => end({ kind: 'killed', data: 'killed' })),
    };
    // Between epochs too: a lost lease kills the run at once, a stop request is seen within checkMs.
    const check = setInterval(() => {
      if (entry.lost) return;
      table
        .current(data.trial)
        .then(({ token: current, stop }) => {
          if (current !== token) entry.lose('another attempt holds it');
          else onStop(stop);
        })
        .catch(() => {}); // Redis unreachable: BullMQ's lock renewal decides
    }, options.checkMs ?? 1000);
    executor.start(launch, sink).then(
      () => entry.lost && executor.kill(data.trial), // lost while the run was being spawned
      (error: unknown) => end({ kind: 'failed', data: `could not start exp run: ${(error as Error).message}` }),
    );
    const outcome = await ended;
    clearInterval(check);
    active.delete(job.id!);
    if (gpu !== null) gpuInUse.set(gpu, (gpuInUse.get(gpu) ?? 1) - 1);

    if (entry.lost) {
      // Write nothing: the trial is (or will be, once the stalled check sees the expired lock)
      // another attempt's, and a KILLED written now would end it for good.
      throw new Error(`${label}: lost the trial to another attempt`);
    }
    if (shuttingDown && outcome.kind === 'killed' && !stopRequested) {
      // Not the sweep's decision: give the trial back for another worker to continue.
      await table.finish(data.trial, token, 'released', '');
      log(`${label}: checkpointed and released to the queue (worker shutting down)`);
      throw new Error(`released by ${name} (shutting down)`);
    }
    const accepted = await table.finish(data.trial, token, outcome.kind, outcome.data);
    if (!accepted) {
      log(`${label}: ${outcome.kind} but rejected: a newer attempt owns the trial`);
      return 'stale';
    }
    log(`${label}: ${outcome.kind}${outcome.kind === 'failed' ? `: ${outcome.data}` : ''}`);
    return outcome.kind;
  };

  const worker = new Worker<TrialJob, string>(QUEUE_NAME, runTrial, {
    connection: { url: options.url, maxRetriesPerRequest: null },
    concurrency,
    name,
    lockDuration,
    // BullMQ renews at half the lock by default: a stall of half the lock would lose the trial.
    lockRenewTime: Math.min(1000, lockDuration / 4),
    stalledInterval: options.stalledIntervalMs ?? Math.min(lockDuration, 5000),
    // A worker that dies mid-trial is not the trial's fault: redeliver it however often that happens.
    maxStalledCount: 1_000,
    autorun: false,
  });
  worker.on('error', (error) => log(`queue: ${error.message}`));
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const id of jobIds) active.get(id)?.lose('its lock could not be renewed');
  });
  worker.on('stalled', (jobId) => log(`queue: job ${jobId} stalled (its worker went silent); it is redelivered`));

  const heartbeat = async () => {
    const info = { name, host: hostname(), pid: process.pid, concurrency, gpus, running: [...active.values()].map((a) => a.trial), seen: Date.now() };
    await redis.multi().zadd(WORKERS_KEY, Date.now(), name).set(workerKey(name), JSON.stringify(info), 'PX', 30_000).exec();
  };
  await heartbeat();
  const beat = setInterval(() => void heartbeat().catch(() => {}), 5_000);

  let forced = false;
  let giveUp: () => void = () => {};
  const deadline = new Promise<void>((resolve) => (giveUp = resolve));
  let deadlineTimer: NodeJS.Timeout | undefined;
  const shutdown = () => {
    if (shuttingDown) return;
    shuttingDown = true;
    const deadlineMs = options.shutdownDeadlineMs ?? (options.graceMs ?? 60_000) + 15_000;
    log(`worker ${name}: shutting down; running trials checkpoint and go back to the queue (at most ${Math.round(deadlineMs / 1000)} s)`);
    for (const entry of active.values()) void entry.executor.stop(entry.trial, 'worker shutting down');
    void worker.close().catch(() => {});
    deadlineTimer = setTimeout(() => {
      forced = true;
      log(`worker ${name}: still shutting down after ${Math.round(deadlineMs / 1000)} s (is Redis reachable?): exiting; unfinished trials keep their last checkpoint and go to another worker when their lease expires`);
      for (const entry of active.values()) entry.executor.kill(entry.trial);
      void worker.close(true).catch(() => {});
      giveUp();
    }, deadlineMs);
  };
  if (options.signal?.aborted) shutdown();
  options.signal?.addEventListener('abort', shutdown, { once: true });

  log(`worker ${name}: ${concurrency} slot(s)${gpus.length ? `, GPUs ${gpus.join(',')}` : ''}, queue ${describeQueue(options.url)}`);
  try {
    await Promise.race([worker.run(), deadline]);
  } finally {
    options.signal?.removeEventListener('abort', shutdown);
    clearInterval(beat);
    clearTimeout(deadlineTimer);
    // A Redis that is gone never answers: the goodbye gets a few seconds, then the connection is dropped.
    const bounded = (work: Promise<unknown>) => Promise.race([work.catch(() => {}), new Promise((r) => setTimeout(r, forced ? 0 : 3_000).unref())]);
    await bounded(redis.multi().zrem(WORKERS_KEY, name).del(workerKey(name)).exec());
    if (forced) redis.disconnect();
    else await bounded(redis.quit());
    redis.disconnect();
  }
}

