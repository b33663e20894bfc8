/**
 * The decode workers of the first pass: a small pool of worker threads (started on the first
 * cache miss, kept for the process' next split, idle ones unref'd) that decode ranges of an
 * image list into a SharedArrayBuffer. Separate from the batch workers (pool.ts), which load
 * TF.js and its WebAssembly backend that decoding does not need.
 */
import type { Worker } from 'node:worker_threads';
import type { DecodeRange, RangeFailure } from '../datasets/images/decode-range.ts';
import type { DecodeJob, FromDecodeWorker } from './protocol.ts';
import { spawnWorker } from './spawn.ts';

interface Pending {
  job: DecodeJob;
  onDecoded: (count: number) => void;
  resolve: (failures: RangeFailure[]) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Jobs posted to the worker and not answered yet (the worker runs them in turn). */
  busy: Pending[];
}

/**
 * Jobs posted ahead to each worker: the next range waits in the worker's own queue, so a worker
 * never idles while the calling thread is busy decoding a range itself.
 */
const DEPTH = 2;

const slots: Slot[] = [];
const queue: Pending[] = [];
let nextJob = 1;

function dispatch(): void {
  for (let depth = 1; depth <= DEPTH; depth++) {
    for (const slot of slots) {
      if (slot.busy.length >= depth || queue.length === 0) continue;
      const pending = queue.shift()!;
      slot.busy.push(pending);
      slot.worker.ref();
      slot.worker.postMessage(pending.job);
    }
  }
}

function onMessage(slot: Slot, message: FromDecodeWorker): void {
  const at = slot.busy.findIndex((p) => p.job.jobId === message.jobId);
  if (at < 0) return;
  const pending = slot.busy[at]!;
  if (message.kind === 'progress') {
    pending.onDecoded(message.decoded);
    return;
  }
  slot.busy.splice(at, 1);
  if (slot.busy.length === 0) slot.worker.unref();
  if (message.kind === 'decoded') {
    pending.onDecoded(message.decoded);
    pending.resolve(message.failures);
  } else pending.reject(Object.assign(new Error(`decode worker: ${message.message}`), { stack: message.stack }));
  dispatch();
}

function onCrash(slot: Slot, error: Error): void {
  slots.splice(slots.indexOf(slot), 1);
  for (const pending of slot.busy) pending.reject(new Error(`decode worker crashed: ${error.message}`, { cause: error }));
  // What is queued waits for a worker; start one so it is not stranded.
  ensure(Math.max(1, slots.length + 1));
  dispatch();
}

function ensure(count: number): void {
  while (slots.length < count) {
    const slot: Slot = { worker: spawnWorker('decode-worker'), busy: [] };
    slot.worker.on('message', (message: FromDecodeWorker) => onMessage(slot, message));
    slot.worker.on('error', (error) => onCrash(slot, error));
    slots.push(slot);
  }
}

/** Decodes one range on the next free decode worker. */
function decodeOnWorker(range: DecodeRange, target: SharedArrayBuffer, onDecoded: (count: number) => void): Promise<RangeFailure[]> {
  return new Promise((resolve, reject) => {
    queue.push({ job: { jobId: nextJob++, range, target }, onDecoded, resolve, reject });
    dispatch();
  });
}

/**
 * Runs `workers` decode workers (started on first use) on the ranges `take` hands out until it
 * returns undefined: each worker takes the next range when it is done, so uneven images balance
 * and the caller's thread can take ranges from the same `take`. Resolves with the failures of
 * the ranges the workers decoded; `onDecoded` counts images as they finish.
 */
export async function decodeOnWorkers(
  take: () => DecodeRange | undefined,
  target: SharedArrayBuffer,
  workers: number,
  onDecoded: (count: number) => void,
): Promise<RangeFailure[]> {
  ensure(workers);
  const failures: RangeFailure[] = [];
  const feed = async () => {
    for (let range = take(); range; range = take()) failures.push(...(await decodeOnWorker(range, target, onDecoded)));
  };
  await Promise.all(Array.from({ length: workers * DEPTH }, feed));
  return failures;
}
