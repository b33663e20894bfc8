/**
 * The sweep's trial table in Redis: the control-plane truth a controller and its workers share.
 *
 * Every state change is one Lua script, so it is atomic with the checks that guard it and with
 * the event it appends to the sweep's stream:
 * - `enqueue` (controller, under its lease): creates a trial, or decides that a stored one must be
 *   attached to (in flight), replayed (ended) or queued again (a new job id: `<sweep>.<trial>.<n>`).
 * - `claim` (worker, when BullMQ delivers a job): a fresh attempt token; refuses a job of an
 *   earlier enqueue and a trial that already ended, so a pruned or finished trial never runs again.
 * - `report` (worker, per event): `started` and `epoch` events, accepted only from the attempt that
 *   holds the current token; returns any stop request, which the worker checks at each epoch.
 * - `finish` (worker): the final outcome, written once: only the current attempt of a RUNNING
 *   trial may write it, so a stale attempt (a frozen worker that lost its lease) is rejected.
 * - `stop` (controller): a stop request (prune or interrupt) the trial's worker sees within one
 *   epoch; a trial still waiting in the queue ends at once.
 */
import type { Redis } from 'ioredis';
import type { EpochMetrics } from '../state.ts';
import type { Params } from '../space.ts';

/** BullMQ queue shared by all sweeps on one Redis (BullMQ forbids ':' in names). */
export const QUEUE_NAME = 'tessera-trials';
/** Live workers: a sorted set of names by last heartbeat (ms). */
export const WORKERS_KEY = 'tessera:workers';
export const workerKey = (name: string): string => `tessera:worker:${name}`;

export type QueueTrialState = 'QUEUED' | 'RUNNING' | 'FINISHED' | 'FAILED' | 'PRUNED' | 'KILLED';
export type StopKind = 'prune' | 'interrupt';

export function sweepKeys(sweep: string) {
  const base = `tessera:sweep:${sweep}`;
  return {
    /** Hash: name, fingerprint, experiment, objective, parameters, parallel, created, runId (the sweep's own run, when tracked). */
    meta: `${base}:meta`,
    /** The controller's lease: JSON {token, host, pid, since}, with a TTL its holder renews. */
    lease: `${base}:lease`,
    /** Sorted set of trial ids by index. */
    trials: `${base}:trials`,
    trial: (id: string) => `${base}:trial:${id}`,
    /** Hash epoch -> metrics JSON (kept verbatim: Lua's cjson would round the numbers). */
    epochs: (id: string) => `${base}:trial:${id}:epochs`,
    /** Stream of trial events, read by the controller through the consumer group `controller`. */
    events: `${base}:events`,
  };
}
export type SweepKeys = ReturnType<typeof sweepKeys>;

export const CONTROLLER_GROUP = 'controller';

/** What a worker needs from a trial's job (JSON, it crosses the queue). */
export interface TrialJob {
  sweep: string;
  trial: string;
  index: number;
  experiment: string;
  overrides: string[];
  tags: Record<string, string>;
  /** Extra `exp run` arguments chosen by the controller, e.g. `--backend cpu`. */
  runArgs: string[];
  /** The sweep's own run (TrialLaunch.parentRunId): the trial's run is its child. */
  parentRunId?: string;
}

export interface QueueTrial {
  id: string;
  index: number;
  params: Params;
  overrides: string[];
  experiment: string;
  state: QueueTrialState;
  /** How often the controller queued it, and how often a worker started it (deliveries). */
  enqueues: number;
  attempts: number;
  jobId: string;
  worker: string | null;
  runId: string | null;
  epochs: EpochMetrics[];
  /** The final metrics of a FINISHED trial. */
  result: EpochMetrics | null;
  reason: string | null;
  stop: string | null;
  updated: number;
}

const ENQUEUE = `
local lease = redis.call('GET', KEYS[1])
if not lease or cjson.decode(lease).token ~= ARGV[1] then return redis.error_reply('LEASE this controller no longer holds the sweep lease') end
local state = redis.call('HGET', KEYS[2], 'state')
if not state then
  local jid = ARGV[3] .. '.' .. ARGV[4] .. '.1'
  redis.call('HSET', KEYS[2], 'id', ARGV[4], 'index', ARGV[5], 'params', ARGV[6], 'overrides', ARGV[7],
    'experiment', ARGV[8], 'state', 'QUEUED', 'enqueues', 1, 'attempt', 0, 'jobId', jid, 'updated', ARGV[2])
  redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), ARGV[4])
  return {'add', jid}
end
if state == 'QUEUED' or state == 'RUNNING' then return {'attach', redis.call('HGET', KEYS[2], 'jobId')} end
if state == 'FINISHED' or state == 'PRUNED' then return {'done', state} end
local n = redis.call('HINCRBY', KEYS[2], 'enqueues', 1)
local jid = ARGV[3] .. '.' .. ARGV[4] .. '.' .. n
redis.call('HSET', KEYS[2], 'state', 'QUEUED', 'jobId', jid, 'token', '', 'stop', '', 'stopKind', '', 'reason', '', 'updated', ARGV[2])
return {'add', jid}
`;

const CLAIM = `
local t = redis.call('HMGET', KEYS[1], 'state', 'jobId', 'runId')
if not t[1] then return {'gone'} end
if t[2] ~= ARGV[1] then return {'ended', 'superseded by job ' .. t[2]} end
if t[1] ~= 'QUEUED' and t[1] ~= 'RUNNING' then return {'ended', t[1]} end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'RUNNING', 'token', ARGV[2], 'worker', ARGV[3], 'updated', ARGV[4])
return {'run', tostring(attempt), t[3] or ''}
`;

const REPORT = `
local t = redis.call('HMGET', KEYS[1], 'token', 'state', 'stop', 'id', 'attempt')
if t[1] ~= ARGV[1] or t[2] ~= 'RUNNING' then return {'stale', ''} end
if ARGV[2] == 'started' then
  redis.call('HSET', KEYS[1], 'runId', ARGV[4])
else
  local epoch = tonumber(ARGV[3])
  for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
    if tonumber(field) > epoch then redis.call('HDEL', KEYS[3], field) end
  end
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
end
redis.call('HSET', KEYS[1], 'updated', ARGV[5])
redis.call('XADD', KEYS[2], '*', 'trial', t[4], 'attempt', t[5], 'kind', ARGV[2], 'epoch', ARGV[3], 'data', ARGV[4])
return {'ok', t[3] or ''}
`;

const FINISH = `
local t = redis.call('HMGET', KEYS[1], 'token', 'state', 'stop', 'stopKind', 'id', 'attempt')
if t[1] ~= ARGV[1] or t[2] ~= 'RUNNING' then return {'stale', t[2] or ''} end
local kind = ARGV[2]
local state
if kind == 'finished' then state = 'FINISHED'
elseif kind == 'failed' then state = 'FAILED'
elseif kind == 'released' then state = 'QUEUED'
elseif t[4] == 'prune' then state = 'PRUNED'
else state = 'KILLED' end
local reason = ARGV[3]
if kind == 'killed' and t[3] and t[3] ~= '' then reason = t[3] end
redis.call('HSET', KEYS[1], 'state', state, 'token', '', 'updated', ARGV[4])
if kind == 'finished' then redis.call('HSET', KEYS[1], 'result', ARGV[3], 'reason', '')
elseif kind ~= 'released' then redis.call('HSET', KEYS[1], 'reason', reason) end
if kind ~= 'released' then
  redis.call('XADD', KEYS[2], '*', 'trial', t[5], 'attempt', t[6], 'kind', kind, 'epoch', '0', 'data', reason)
end
return {'ok', state}
`;

const STOP = `
local t = redis.call('HMGET', KEYS[1], 'state', 'id', 'attempt')
if t[1] == 'QUEUED' then
  local state = 'KILLED'
  if ARGV[2] == 'prune' then state = 'PRUNED' end
  redis.call('HSET', KEYS[1], 'state', state, 'reason', ARGV[1], 'token', '', 'updated', ARGV[3])
  redis.call('XADD', KEYS[2], '*', 'trial', t[2], 'attempt', t[3], 'kind', 'killed', 'epoch', '0', 'data', ARGV[1])
  return 'ended'
end
if t[1] == 'RUNNING' then
  redis.call('HSET', KEYS[1], 'stop', ARGV[1], 'stopKind', ARGV[2], 'updated', ARGV[3])
  return 'stopping'
end
return 'noop'
`;

const RENEW_LEASE = `
local lease = redis.call('GET', KEYS[1])
if not lease or cjson.decode(lease).token ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

const RELEASE_LEASE = `
local lease = redis.call('GET', KEYS[1])
if lease and cjson.decode(lease).token == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;

type Reply = string[];

/** The scripts, bound to one connection. */
export class TrialTable {
  constructor(
    readonly redis: Redis,
    readonly sweep: string,
    readonly keys: SweepKeys = sweepKeys(sweep),
  ) {}

  private eval(script: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    return this.redis.eval(script, String(keys.length), ...keys, ...args.map(String));
  }

  async enqueue(leaseToken: string, trial: { id: string; index: number; params: Params; overrides: string[]; experiment: string }): Promise<
    { action: 'add' | 'attach'; jobId: string } | { action: 'done'; state: QueueTrialState }
  > {
    const k = this.keys;
    const [action, value] = (await this.eval(ENQUEUE, [k.lease, k.trial(trial.id), k.trials], [
      leaseToken, Date.now(), this.sweep, trial.id, trial.index, JSON.stringify(trial.params), JSON.stringify(trial.overrides), trial.experiment,
    ])) as Reply;
    return action === 'done' ? { action, state: value as QueueTrialState } : { action: action as 'add' | 'attach', jobId: value! };
  }

  async claim(trial: string, jobId: string, token: string, worker: string): Promise<
    { action: 'run'; attempt: number; runId: string | null } | { action: 'ended' | 'gone'; detail: string }
  > {
    const [action, a, b] = (await this.eval(CLAIM, [this.keys.trial(trial)], [jobId, token, worker, Date.now()])) as Reply;
    if (action === 'run') return { action, attempt: Number(a), runId: b || null };
    return { action: action as 'ended' | 'gone', detail: a ?? '' };
  }

  /** `started` (data: the run id) or `epoch` (data: metrics JSON). Returns the stop request, if any. */
  async report(trial: string, token: string, kind: 'started' | 'epoch', epoch: number, data: string): Promise<{ stale: boolean; stop: string | null }> {
    const k = this.keys;
    const [status, stop] = (await this.eval(REPORT, [k.trial(trial), k.events, k.epochs(trial)], [token, kind, epoch, data, Date.now()])) as Reply;
    return { stale: status === 'stale', stop: stop || null };
  }

  /**
   * The attempt's outcome. `released`: the worker is shutting down and gives the trial back to
   * the queue (no event: the controller keeps waiting). Returns false for a stale attempt.
   */
  async finish(trial: string, token: string, kind: 'finished' | 'failed' | 'killed' | 'released', data: string): Promise<boolean> {
    const k = this.keys;
    const [status] = (await this.eval(FINISH, [k.trial(trial), k.events], [token, kind, data, Date.now()])) as Reply;
    return status === 'ok';
  }

  async stop(trial: string, reason: string, kind: StopKind): Promise<'ended' | 'stopping' | 'noop'> {
    const k = this.keys;
    return (await this.eval(STOP, [k.trial(trial), k.events], [reason, kind, Date.now()])) as 'ended' | 'stopping' | 'noop';
  }

  /** The current token and stop request (a worker's periodic check between epochs). */
  async current(trial: string): Promise<{ token: string | null; stop: string | null }> {
    const [token, stop] = await this.redis.hmget(this.keys.trial(trial), 'token', 'stop');
    return { token: token || null, stop: stop || null };
  }

  async renewLease(token: string, ttlMs: number): Promise<boolean> {
    return (await this.eval(RENEW_LEASE, [this.keys.lease], [token, ttlMs])) === 1;
  }

  async releaseLease(token: string): Promise<void> {
    await this.eval(RELEASE_LEASE, [this.keys.lease], [token]);
  }

  async trial(id: string): Promise<QueueTrial | null> {
    const [hash, epochs] = await Promise.all([this.redis.hgetall(this.keys.trial(id)), this.redis.hgetall(this.keys.epochs(id))]);
    if (!hash.state) return null;
    const curve: EpochMetrics[] = [];
    for (const [epoch, json] of Object.entries(epochs)) curve[Number(epoch) - 1] = JSON.parse(json) as EpochMetrics;
    for (let i = 0; i < curve.length; i++) curve[i] ??= {};
    return {
      id: hash.id!,
      index: Number(hash.index),
      params: JSON.parse(hash.params!) as Params,
      overrides: JSON.parse(hash.overrides!) as string[],
      experiment: hash.experiment!,
      state: hash.state as QueueTrialState,
      enqueues: Number(hash.enqueues ?? 0),
      attempts: Number(hash.attempt ?? 0),
      jobId: hash.jobId!,
      worker: hash.worker || null,
      runId: hash.runId || null,
      epochs: curve,
      result: hash.result ? (JSON.parse(hash.result) as EpochMetrics) : null,
      reason: hash.reason || null,
      stop: hash.stop || null,
      updated: Number(hash.updated ?? 0),
    };
  }

  async trials(): Promise<QueueTrial[]> {
    const ids = await this.redis.zrange(this.keys.trials, '0', '-1');
    const trials = await Promise.all(ids.map((id) => this.trial(id)));
    return trials.filter((t): t is QueueTrial => t !== null);
  }
}
