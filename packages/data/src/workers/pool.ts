/**
 * The batch workers: a pool of worker threads, shared by every pipeline of the process, that
 * gather and transform batches while the training thread trains (see batch-worker.ts).
 *
 * Hand-written over node:worker_threads rather than a pool library (piscina, workerpool):
 * the pipeline needs per-worker registration of shared memory, in-order delivery and
 * transferable results, which is most of the code either way.
 */
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import type { Worker } from 'node:worker_threads';
import type { ImageSet } from '../store.ts';
import { spawnWorker } from './spawn.ts';
import type { BatchJob, BatchResult, FromWorker, RegisterMessage, SharedSet, ToWorker } from './protocol.ts';

/**
 * Workers when a dataset does not say. On the native backend none: the batch transforms are
 * TensorFlow ops, run on TensorFlow's own threads (all cores) at the training thread's turn,
 * and cost a Mixer batch ~10 ms there, where a WebAssembly worker doing the same work took ~35 ms
 * of every step from TensorFlow's threads on 2 cores (docs/results.md, issue 14). Every other
 * backend computes on the training thread's one core: the cores left, at most 4.
 */
export function defaultWorkerCount(env: NodeJS.ProcessEnv = process.env, backend = tf.getBackend()): number {
  const fromEnv = env.TESSERA_DATA_WORKERS;
  if (fromEnv !== undefined && /^\d+$/.test(fromEnv)) return Number(fromEnv);
  if (backend === 'tensorflow') return 0;
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

/** A batch the workers could not make because its pipeline could not be set up there (not a failure of the batch itself). */
export class WorkerSetupError extends Error {
  override name = 'WorkerSetupError';
}

interface Pending {
  job: BatchJob;
  resolve: (result: BatchResult) => void;
  reject: (error: Error) => void;
}

class WorkerPool {
  private readonly workers: { worker: Worker; busy: Pending | undefined }[] = [];
  private readonly queue: Pending[] = [];
  private readonly registrations = new Map<number, RegisterMessage>();
  private nextJob = 1;
  /** Batches made so far, per worker (for tests and diagnostics). */
  readonly made: number[] = [];

  get size(): number {
    return this.workers.length;
  }

  /** Grows the pool to `count` workers; new workers get every live registration first. */
  ensure(count: number): void {
    while (this.workers.length < count) {
      const worker = spawnWorker('batch-worker');
      const slot = { worker, busy: undefined as Pending | undefined };
      worker.on('message', (message: FromWorker) => this.onMessage(slot, message));
      worker.on('error', (error) => this.onCrash(slot, error));
      for (const registration of this.registrations.values()) worker.postMessage(registration);
      this.workers.push(slot);
    }
  }

  register(message: RegisterMessage): void {
    this.registrations.set(message.pipelineId, message);
    for (const { worker } of this.workers) worker.postMessage(message);
  }

  forget(pipelineId: number): void {
    this.registrations.delete(pipelineId);
    for (const { worker } of this.workers) worker.postMessage({ kind: 'forget', pipelineId } satisfies ToWorker);
  }

  run(job: Omit<BatchJob, 'jobId' | 'kind'>): Promise<BatchResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { ...job, kind: 'batch', jobId: this.nextJob++ }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.workers) {
      if (slot.busy || this.queue.length === 0) continue;
      const pending = this.queue.shift()!;
      slot.busy = pending;
      // While a job runs the worker must keep the program alive (it holds a result someone awaits).
      slot.worker.ref();
      slot.worker.postMessage(pending.job);
    }
  }

  private onMessage(slot: { worker: Worker; busy: Pending | undefined }, message: FromWorker): void {
    if (message.kind === 'ready') return;
    const pending = slot.busy;
    slot.busy = undefined;
    const at = this.workers.indexOf(slot);
    if (message.kind === 'batch') this.made[at] = (this.made[at] ?? 0) + 1;
    slot.worker.unref();
    if (pending && pending.job.jobId === message.jobId) {
      if (message.kind === 'batch') pending.resolve(message);
      else if (message.setup) pending.reject(new WorkerSetupError(message.message));
      else pending.reject(Object.assign(new Error(`batch worker: ${message.message}`), { stack: message.stack }));
    }
    this.dispatch();
  }

  private onCrash(slot: { worker: Worker; busy: Pending | undefined }, error: Error): void {
    const index = this.workers.indexOf(slot);
    if (index >= 0) this.workers.splice(index, 1);
    slot.busy?.reject(new Error(`batch worker crashed: ${error.message}`, { cause: error }));
    // Whatever is queued waits for the next worker; start one so it is not stranded.
    this.ensure(Math.max(1, this.workers.length + 1));
    this.dispatch();
  }
}

let pool: WorkerPool | undefined;
let nextPipeline = 1;
const forgetting = new FinalizationRegistry<number>((id) => pool?.forget(id));

/** Moves an ImageSet's pixels and labels into shared memory (once), so workers read them in place. */
export function shareSet(set: ImageSet): SharedSet {
  if (!(set.bytes.buffer instanceof SharedArrayBuffer)) {
    const bytes = new Uint8Array(new SharedArrayBuffer(set.bytes.byteLength));
    bytes.set(set.bytes);
    // The ImageSet now uses the shared copy; the private one can be collected.
    set.bytes = bytes;
  }
  if (!(set.labels.buffer instanceof SharedArrayBuffer)) {
    const shared = new SharedArrayBuffer(set.labels.byteLength);
    const labels = set.labels instanceof Uint16Array ? new Uint16Array(shared) : new Uint8Array(shared);
    labels.set(set.labels);
    set.labels = labels;
  }
  const { bytes, labels, count, height, width, channels, offset, stride } = set;
  return { bytes, labels, count, height, width, channels, offset, stride };
}

/** Batches made by each worker of the process' pool so far (empty before the first). */
export function batchesMadeByWorkers(): number[] {
  return [...(pool?.made ?? [])];
}

/** Starts the process' workers ahead of their first batch. */
export function startWorkers(count: number): void {
  pool ??= new WorkerPool();
  pool.ensure(count);
}

/** A pipeline's handle on the pool: its sets and transforms are registered in every worker. */
export interface WorkerHandle {
  /** `set`: a registered set's index, or a batch's own set (streamed; moved to shared memory). */
  run(set: number | ImageSet, indices: Int32Array, options: { training: boolean; seed: number; epoch: number; batchIndex: number }): Promise<BatchResult>;
}

export function attachWorkers(
  owner: object,
  count: number,
  registration: Omit<RegisterMessage, 'kind' | 'pipelineId'>,
): WorkerHandle {
  pool ??= new WorkerPool();
  pool.ensure(count);
  const pipelineId = nextPipeline++;
  pool.register({ kind: 'register', pipelineId, ...registration });
  forgetting.register(owner, pipelineId);
  const p = pool;
  return {
    run: (set, indices, options) => p.run({ pipelineId, ...(typeof set === 'number' ? { set } : { set: -1, inline: shareSet(set) }), indices, ...options }),
  };
}
