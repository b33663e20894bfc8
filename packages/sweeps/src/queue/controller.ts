import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Registries } from '@tessera/core';
import { sweepDir, sweepTracking, type SweepFileOptions } from '../launch.ts';
import { loadSweep } from '../load.ts';
import { runSweep, sweepFingerprint, type RunSweepOptions, type SweepResult } from '../runner.ts';
import type { SweepSpec } from '../spec.ts';
import type { SweepTrackingOptions } from '../sweep-run.ts';
import { curveOf, loadState, saveState, type SweepState, type Trial } from '../state.ts';
import { connect, describeQueue, reachable } from './connection.ts';
import { QueueExecutor } from './queue-executor.ts';
import { TrialTable, WORKERS_KEY, workerKey, type QueueTrial } from './table.ts';

/** Another controller holds the sweep, or this one lost it: printed as is, exit 1. */
export class SweepLeaseError extends Error {
  override name = 'SweepLeaseError';
}

export interface QueueSweepOptions {
  registries: Registries;
  /** `redis://HOST:PORT/DB`. */
  url: string;
  /** `--set` arguments for every trial (part of the sweep's identity, see SweepFileOptions). */
  overrides?: readonly string[];
  runsDir?: string;
  statePath?: string;
  parallel?: number;
  maxTrials?: number;
  runArgs?: readonly string[];
  /**
   * The controller lease's time to live (default 15 s); it is renewed every second (a third of it
   * when shorter), so only a controller silent for nearly all of it loses the sweep.
   */
  leaseMs?: number;
  /** As SweepFileOptions.createTracker: the tracker besides the local store for the sweep's own run. */
  createTracker?: SweepFileOptions['createTracker'];
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** See RunSweepOptions.onUpdate. */
  onUpdate?: RunSweepOptions['onUpdate'];
}

interface LeaseHolder {
  token: string;
  host: string;
  pid: number;
  since: string;
}

/**
 * Takes the sweep's controller lease: one controller per sweep. A second controller (or the same
 * command started twice) gets a SweepLeaseError naming the holder; a controller that died leaves
 * the lease to expire within `ttlMs`.
 */
export async function acquireLease(table: TrialTable, ttlMs: number, url: string): Promise<LeaseHolder> {
  const holder: LeaseHolder = { token: randomUUID(), host: hostname(), pid: process.pid, since: new Date().toISOString() };
  const ok = await table.redis.set(table.keys.lease, JSON.stringify(holder), 'PX', ttlMs, 'NX');
  if (ok === 'OK') return holder;
  const [current, ttl] = await Promise.all([table.redis.get(table.keys.lease), table.redis.pttl(table.keys.lease)]);
  const other = current ? (JSON.parse(current) as LeaseHolder) : null;
  throw new SweepLeaseError(
    `sweep "${table.sweep}" on ${describeQueue(url)} is already controlled` +
      (other ? ` by pid ${other.pid} on ${other.host} (since ${other.since})` : '') +
      `; one controller per sweep. If that controller is gone, its lease expires in ${Math.max(0, Math.ceil(ttl / 1000))} s: ` +
      'run the command again then (`exp sweep status` shows the sweep meanwhile)',
  );
}

/**
 * `exp sweep FILE --executor queue --queue URL`: the sweep runner with the queue executor, under
 * the sweep's controller lease. The Redis trial table is the truth; the local state file is
 * brought up to date from it before the runner resumes, so a controller can move to another
 * machine.
 */
export async function runQueueSweepFile(
  file: string,
  options: QueueSweepOptions,
): Promise<SweepResult & { spec: SweepSpec; statePath: string }> {
  const { spec: loaded, base } = loadSweep(file, { registries: options.registries, overrides: options.overrides ?? [] });
  const spec: SweepSpec = {
    ...loaded,
    ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
    ...(options.maxTrials !== undefined ? { maxTrials: options.maxTrials } : {}),
  };
  const statePath = options.statePath ?? join(sweepDir(spec, options.runsDir), 'state.json');
  const tracking = sweepTracking(spec, base, options);
  return { ...(await runQueueSweep(spec, { ...options, statePath, tracking })), spec, statePath };
}

/**
 * The same for a spec in hand (programs, tests). With `tracking`, the sweep is recorded as a run
 * that every trial's run names as its parent (as with the local executor); its id is kept in the
 * sweep's Redis meta, so a controller resumed on another machine continues the same run, provided
 * it sees the same run store (`runsDir`, shared like the workers'); otherwise it records a new one.
 */
export async function runQueueSweep(
  spec: SweepSpec,
  options: Omit<QueueSweepOptions, 'registries' | 'overrides' | 'statePath' | 'parallel' | 'maxTrials' | 'createTracker'> & {
    statePath: string;
    tracking?: SweepTrackingOptions;
  },
): Promise<SweepResult> {
  const log = options.log ?? (() => {});
  const ttl = options.leaseMs ?? 15_000;
  const redis = connect(options.url);
  const table = new TrialTable(redis, spec.name);
  let executor: QueueExecutor | null = null;
  let renew: NodeJS.Timeout | null = null;
  let lost = false;
  const lease = await reachable(redis, options.url)
    .then(() => acquireLease(table, ttl, options.url))
    .catch(async (error: unknown) => {
      redis.disconnect();
      throw error;
    });
  try {
    renew = setInterval(() => {
      table
        .renewLease(lease.token, ttl)
        .then((held) => {
          if (held || lost) return;
          lost = true;
          log(`queue: this controller lost the lease on sweep ${spec.name}; another controller runs it now`);
          executor?.detach();
        })
        .catch(() => {}); // Redis restarting: the next renewal decides
    }, Math.max(100, Math.min(1000, Math.floor(ttl / 3))));

    await checkFingerprint(redis, table, spec);
    await syncState(table, spec, options.statePath);
    executor = await QueueExecutor.open({
      url: options.url,
      sweep: spec.name,
      leaseToken: lease.token,
      ...(options.runArgs ? { runArgs: options.runArgs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      log,
    });
    const result = await runSweep(spec, {
      executor,
      statePath: options.statePath,
      log,
      ...(options.tracking ? { tracking: options.tracking } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onUpdate ? { onUpdate: options.onUpdate } : {}),
    });
    if (lost) throw new SweepLeaseError(`sweep "${spec.name}": this controller lost its lease (it was silent past ${ttl} ms) and stopped`);
    return result;
  } finally {
    if (renew) clearInterval(renew);
    await executor?.close();
    if (!lost) await table.releaseLease(lease.token).catch(() => {});
    await redis.quit().catch(() => {});
  }
}

/** A sweep name is reused only for the same definition (the runner's own rule, kept in Redis). */
async function checkFingerprint(redis: Redis, table: TrialTable, spec: SweepSpec): Promise<void> {
  const fingerprint = sweepFingerprint(spec);
  await redis.hsetnx(table.keys.meta, 'fingerprint', fingerprint);
  const stored = await redis.hget(table.keys.meta, 'fingerprint');
  if (stored !== fingerprint) {
    throw new Error(
      `sweep "${spec.name}" in Redis was started from a different definition (method, seed, parameters, objective or experiment changed); ` +
        'rename the sweep (its `name:`) to start afresh',
    );
  }
  await redis.hset(table.keys.meta, {
    name: spec.name,
    experiment: spec.experiment,
    objective: JSON.stringify(spec.objective),
    parameters: JSON.stringify(spec.parameters.map((p) => p.path)),
    parallel: spec.parallel,
  });
  await redis.hsetnx(table.keys.meta, 'created', new Date().toISOString());
}

/**
 * Brings the runner's state file up to date from the Redis trial table. Outcomes decided in Redis
 * (PRUNED, FAILED, KILLED) are copied; a trial FINISHED in Redis but not in the file, and every
 * trial in flight, becomes RUNNING, so the runner restarts it and the executor attaches to it and
 * replays its record (the runner computes the objective value itself, from the same metrics).
 * The sweep's own run id (stored by the executor when it first enqueues) is copied too.
 */
export async function syncState(table: TrialTable, spec: SweepSpec, statePath: string): Promise<void> {
  const remote = await table.trials();
  const runId = await table.redis.hget(table.keys.meta, 'runId');
  if (remote.length === 0 && !runId) return;
  const state: SweepState = (await loadState(statePath)) ?? { version: 1, name: spec.name, fingerprint: sweepFingerprint(spec), trials: [] };
  // The sweep's run, as the first controller recorded it: the runner continues it.
  if (runId) state.runId = runId;
  const byId = new Map(state.trials.map((t) => [t.id, t]));
  for (const r of remote) {
    let local = byId.get(r.id);
    if (!local) {
      local = { id: r.id, index: r.index, params: r.params, overrides: r.overrides, state: 'RUNNING', attempts: 0, runId: null, epochs: [], finalMetric: null, reason: null };
      state.trials.push(local);
      byId.set(r.id, local);
    }
    local.runId = r.runId ?? local.runId;
    local.epochs = r.epochs.map((e) => ({ ...e }));
    local.attempts = Math.max(local.attempts, r.enqueues);
    adoptOutcome(local, r, spec);
  }
  state.trials.sort((a, b) => a.index - b.index);
  await saveState(statePath, state);
}

function adoptOutcome(local: Trial, remote: QueueTrial, spec: SweepSpec): void {
  switch (remote.state) {
    case 'PRUNED': {
      const curve = curveOf(local, spec.objective.metric);
      local.state = 'PRUNED';
      local.finalMetric = curve.length > 0 ? curve[curve.length - 1]! : null;
      local.reason = remote.reason;
      return;
    }
    case 'FAILED':
    case 'KILLED':
      local.state = remote.state;
      local.reason = remote.reason;
      return;
    case 'FINISHED':
      if (local.state !== 'FINISHED') local.state = 'RUNNING';
      return;
    default:
      local.state = 'RUNNING';
  }
}

export interface SweepStatus {
  sweep: string;
  meta: Record<string, string>;
  controller: LeaseHolder | null;
  trials: QueueTrial[];
  workers: { name: string; host: string; pid: number; concurrency: number; gpus: string[]; running: string[]; seen: number }[];
  events: { length: number; pending: number };
}

/** What `exp sweep status ID --queue URL` shows. */
export async function sweepStatus(url: string, sweep: string): Promise<SweepStatus | null> {
  const redis = connect(url);
  try {
    await reachable(redis, url);
    const table = new TrialTable(redis, sweep);
    const meta = await redis.hgetall(table.keys.meta);
    if (!meta.fingerprint) return null;
    const lease = await redis.get(table.keys.lease);
    const names = await redis.zrange(WORKERS_KEY, '0', '-1');
    const workers = [];
    for (const name of names) {
      const info = await redis.get(workerKey(name));
      if (info) workers.push(JSON.parse(info) as SweepStatus['workers'][number]);
      else await redis.zrem(WORKERS_KEY, name); // its heartbeat expired
    }
    let pending = 0;
    try {
      const summary = (await redis.xpending(table.keys.events, 'controller')) as [number, ...unknown[]];
      pending = Number(summary[0]);
    } catch {
      // no stream yet
    }
    return {
      sweep,
      meta,
      controller: lease ? (JSON.parse(lease) as LeaseHolder) : null,
      trials: await table.trials(),
      workers,
      events: { length: await redis.xlen(table.keys.events), pending },
    };
  } finally {
    redis.disconnect();
  }
}

/** The status as text: the controller, the workers, then one row per trial. */
export function formatSweepStatus(status: SweepStatus, now = Date.now()): string {
  const lines: string[] = [];
  const objective = status.meta.objective ? (JSON.parse(status.meta.objective) as { metric: string }) : { metric: 'objective' };
  lines.push(`sweep ${status.sweep}: ${status.meta.experiment ?? ''}`);
  lines.push(
    status.controller
      ? `controller: pid ${status.controller.pid} on ${status.controller.host} since ${status.controller.since}`
      : 'controller: none (resume with exp sweep FILE --executor queue --queue URL)',
  );
  lines.push(`events: ${status.events.length} in the stream, ${status.events.pending} read but not acknowledged`);
  lines.push(`workers: ${status.workers.length}`);
  for (const w of status.workers) {
    lines.push(`  ${w.name}  ${w.concurrency} slot(s)${w.gpus.length ? ` GPUs ${w.gpus.join(',')}` : ''}  running ${w.running.join(' ') || '-'}  seen ${Math.round((now - w.seen) / 1000)} s ago`);
  }
  const counts = new Map<string, number>();
  for (const t of status.trials) counts.set(t.state, (counts.get(t.state) ?? 0) + 1);
  lines.push(`trials: ${status.trials.length} (${[...counts].map(([s, n]) => `${n} ${s}`).join(', ') || 'none'})`);
  const headers = ['trial', 'state', 'attempts', 'epochs', objective.metric, 'worker', 'run', 'reason'];
  const rows = status.trials.map((t) => {
    const values = t.epochs.map((e) => e[objective.metric]).filter((v): v is number => typeof v === 'number');
    const last = t.result?.[objective.metric] ?? values[values.length - 1];
    return [t.id, t.state, String(t.attempts), String(t.epochs.length), last === undefined ? '-' : String(Number(last.toPrecision(4))), t.worker ?? '-', t.runId ?? '-', t.reason ?? ''];
  });
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  lines.push(line(headers), ...rows.map(line));
  return lines.join('\n');
}
