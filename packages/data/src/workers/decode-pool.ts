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
  busy: Pending | undefined;
}

const slots: Slot[] = [];
const queue: Pending[] = [];
let nextJob = 1;

function dispatch(): void {
  for (const slot of slots) {
    if (slot.busy || queue.length === 0) continue;
    slot.busy = queue.shift()!;
    slot.worker.ref();
    slot.worker.postMessage(slot.busy.job);
  }
}

function onMessage(slot: Slot, message: FromDecodeWorker): void {
  const pending = slot.busy;
  if (!pending || pending.job.jobId !== message.jobId) return;
  if (message.kind === 'progress') {
    pending.onDecoded(message.decoded);
    return;
  }
  slot.busy = undefined;
  slot.worker.unref();
  if (message.kind === 'decoded') {
    pending.onDecoded(message.decoded);
    pending.resolve(message.failures);
  } else pending.reject(Object.assign(new Error(`decode worker: ${message.message}`), { stack: message.stack }));
  dispatch();
}

function onCrash(slot: Slot, error: Error): void {
  slots.splice(slots.indexOf(slot), 1);
  slot.busy?.reject(new Error(`decode worker crashed: ${error.message}`, { cause: error }));
  // What is queued waits for a worker; start one so it is not stranded.
  ensure(Math.max(1, slots.length + 1));
  dispatch();
}

function ensure(count: number): void {
  while (slots.length < count) {
    const slot: Slot = { worker: spawnWorker('decode-worker'), busy: undefined };
    slot.worker.on('message', (message: FromDecodeWorker) => onMessage(slot, message));
    slot.worker.on('error', (error) => onCrash(slot, error));
    slots.push(slot);
  }
}

/**
 * Decodes `ranges` on `threads` decode workers (each worker takes the next range when it is
 * done, so uneven images balance), into `target`. Resolves with every range's failures, in
 * list order; `onDecoded` counts images as they finish.
 */
export async function decodeInWorkers(
  ranges: DecodeRange[],
  target: SharedArrayBuffer,
  threads: number,
  onDecoded: (count: number) => void,
): Promise<RangeFailure[]> {
  ensure(threads);
  const results = await Promise.all(
    ranges.map(
      (range) =>
        new Promise<RangeFailure[]>((resolve, reject) => {
          queue.push({ job: { jobId: nextJob++, range, target }, onDecoded, resolve, reject });
          dispatch();
        }),
    ),
  );
  return results.flat().sort((a, b) => a.index - b.index);
}
