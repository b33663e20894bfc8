import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Executor, TrialLaunch, TrialSink } from '../executor.ts';
import type { EpochMetrics } from '../state.ts';
import { connect } from './connection.ts';
import { CONTROLLER_GROUP, QUEUE_NAME, TrialTable, type TrialJob } from './table.ts';

export interface QueueExecutorOptions {
  /** `redis://HOST:PORT/DB`. */
  url: string;
  sweep: string;
  /** The controller's lease token: every enqueue checks it, so a deposed controller adds nothing. */
  leaseToken: string;
  /** Extra `exp run` arguments for every trial (e.g. `['--backend', 'cpu']`). */
  runArgs?: readonly string[];
  /**
   * The sweep's abort signal: a stop requested after it fired is an interrupt (the trial ends
   * KILLED and is queued again on resume); before, it is a prune (final, never retried).
   */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * The controller's side of a sweep on a queue: `start` records the trial in the Redis trial table
 * and adds a BullMQ job (its id derived from sweep, trial and enqueue count, so adding it again is a
 * no-op); workers run it and append events to the sweep's stream, which this executor reads through
 * a consumer group and acknowledges after handing each event to the runner. A trial that is already
 * in flight or ended (a resumed controller) is attached to, its stored events replayed.
 */
export class QueueExecutor implements Executor {
  private readonly sinks = new Map<string, TrialSink>();
  private closed = false;
  private detached = false;
  private recordedRunId: string | null = null;
  private readonly loop: Promise<void>;

  private constructor(
    private readonly options: QueueExecutorOptions,
    private readonly redis: Redis,
    private readonly reader: Redis,
    private readonly queue: Queue,
    private readonly table: TrialTable,
  ) {
    this.loop = this.readEvents();
  }

  static async open(options: QueueExecutorOptions): Promise<QueueExecutor> {
    const redis = connect(options.url);
    const reader = connect(options.url);
    const table = new TrialTable(redis, options.sweep);
    try {
      await redis.xgroup('CREATE', table.keys.events, CONTROLLER_GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
    const queue = new Queue(QUEUE_NAME, { connection: { url: options.url, maxRetriesPerRequest: null } });
    return new QueueExecutor(options, redis, reader, queue, table);
  }

  async start(launch: TrialLaunch, sink: TrialSink): Promise<void> {
    this.sinks.set(launch.id, sink);
    if (launch.parentRunId && launch.parentRunId !== this.recordedRunId) {
      // Kept beside the trial table, so that a controller resumed elsewhere (from Redis alone)
      // continues the same sweep run instead of starting a second parent.
      await this.redis.hset(this.table.keys.meta, 'runId', launch.parentRunId);
      this.recordedRunId = launch.parentRunId;
    }
    const decision = await this.table.enqueue(this.options.leaseToken, launch);
    if (decision.action !== 'done') {
      const job: TrialJob = {
        sweep: launch.sweep,
        trial: launch.id,
        index: launch.index,
        experiment: launch.experiment,
        overrides: launch.overrides,
        tags: launch.tags,
        runArgs: [...(this.options.runArgs ?? [])],
        ...(launch.parentRunId ? { parentRunId: launch.parentRunId } : {}),
      };
      // Re-adding an existing job id is ignored by BullMQ: a resumed controller adds no duplicate.
      // Many attempts: a job is retried only when its worker gives it back on shutdown.
      await this.queue.add('trial', job, { jobId: decision.jobId, attempts: 1_000_000, removeOnComplete: { age: 7 * 86_400 }, removeOnFail: { age: 7 * 86_400 } });
    }
    if (decision.action !== 'add') await this.replay(launch.id, sink);
  }

  async stop(trialId: string, reason: string): Promise<void> {
    if (this.detached) return;
    await this.table.stop(trialId, reason, this.options.signal?.aborted ? 'interrupt' : 'prune');
  }

  /**
   * Lets go of the sweep without touching its trials (this controller lost its lease to another
   * one): every running trial is reported killed to the runner, which then returns.
   */
  detach(): void {
    this.detached = true;
    for (const sink of this.sinks.values()) sink.killed();
    this.sinks.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.loop.catch(() => {});
    await this.queue.close();
    this.reader.disconnect();
    await this.redis.quit().catch(() => {});
  }

  /** The stored record of a trial this controller (re)attaches to: its run, epochs and outcome. */
  private async replay(id: string, sink: TrialSink): Promise<void> {
    const trial = await this.table.trial(id);
    if (!trial) return;
    if (trial.runId) sink.started(trial.runId);
    trial.epochs.forEach((metrics, i) => sink.epoch(i + 1, metrics));
    this.deliverEnd(sink, trial.state, trial.state === 'FINISHED' ? JSON.stringify(trial.result ?? {}) : (trial.reason ?? ''));
  }

  private deliverEnd(sink: TrialSink, state: string, data: string): void {
    if (state === 'FINISHED') sink.finished(JSON.parse(data) as EpochMetrics);
    else if (state === 'FAILED') sink.failed(data);
    else if (state === 'PRUNED' || state === 'KILLED') sink.killed();
  }

  /**
   * Reads the event stream: first this controller's own pending entries (events a previous
   * controller read but did not acknowledge before it died), then new ones. Each is acknowledged
   * after the runner has it, so none is lost; a duplicate is harmless (the runner ignores events of
   * ended trials and an epoch reported again replaces itself).
   */
  private async readEvents(): Promise<void> {
    const stream = this.table.keys.events;
    let from = '0';
    while (!this.closed) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = (await this.reader.xreadgroup('GROUP', CONTROLLER_GROUP, 'controller', 'COUNT', 100, 'BLOCK', 500, 'STREAMS', stream, from)) as typeof reply;
      } catch (error) {
        if (this.closed) return;
        this.options.log?.(`queue: reading trial events failed (${(error as Error).message}); retrying`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      const entries = reply?.[0]?.[1] ?? [];
      if (from === '0' && entries.length === 0) from = '>';
      for (const [entryId, flat] of entries) {
        const fields: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
        this.dispatch(fields);
        await this.redis.xack(stream, CONTROLLER_GROUP, entryId);
      }
    }
  }

  private dispatch(event: Record<string, string>): void {
    // An event of a trial this controller has not started (yet) needs no delivery: `start`
    // replays the trial's stored record when it attaches.
    const sink = event.trial ? this.sinks.get(event.trial) : undefined;
    if (!sink || this.detached) return;
    const data = event.data ?? '';
    switch (event.kind) {
      case 'started':
        sink.started(data);
        break;
      case 'epoch':
        sink.epoch(Number(event.epoch), JSON.parse(data) as EpochMetrics);
        break;
      case 'finished':
        this.deliverEnd(sink, 'FINISHED', data);
        break;
      case 'failed':
        this.deliverEnd(sink, 'FAILED', data);
        break;
      case 'killed':
        this.deliverEnd(sink, 'KILLED', data);
        break;
    }
  }
}
