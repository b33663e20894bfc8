/** Messages between the training thread (pool.ts) and the batch workers (batch-worker.ts). */
import type { EntryConfig } from '@tessera/core/registry';
import type { DecodeRange, RangeFailure } from '../datasets/images/decode-range.ts';
import type { ImageSet } from '../store.ts';

/** An ImageSet whose pixels and labels live in SharedArrayBuffers: every worker reads the same memory, nothing is copied. */
export type SharedSet = ImageSet;

export interface RegisterMessage {
  kind: 'register';
  pipelineId: number;
  sets: SharedSet[];
  /** The transforms as configured (YAML specs) and their adapted state, rebuilt in the worker. */
  specs: EntryConfig[];
  state: Record<string, Record<string, unknown>>;
  numClasses: number;
  /** Plugin modules (absolute paths) whose transforms `specs` uses: the worker loads them first, as the training thread did. */
  plugins: string[];
}

export interface BatchJob {
  kind: 'batch';
  jobId: number;
  pipelineId: number;
  /** The registered set's index, or -1 with `inline`. */
  set: number;
  /** A batch's own images (a streamed split), instead of a registered set. */
  inline?: SharedSet;
  /** Image indices into the set, in batch order. */
  indices: Int32Array;
  training: boolean;
  seed: number;
  epoch: number;
  batchIndex: number;
}

export interface ForgetMessage {
  kind: 'forget';
  pipelineId: number;
}

export type ToWorker = RegisterMessage | BatchJob | ForgetMessage;

export interface BatchResult {
  kind: 'batch';
  jobId: number;
  /** float32 NHWC, transforms applied. */
  pixels: Float32Array;
  shape: [number, number, number, number];
  labels: Int32Array;
  /** Soft targets [n, numClasses] when a label-mixing transform ran. */
  soft?: Float32Array;
}

export interface ErrorResult {
  kind: 'error';
  jobId: number;
  message: string;
  stack?: string;
  /** The batch's pipeline could not be set up in the worker (a plugin that fails to load there, say). */
  setup?: true;
}

export type FromWorker = BatchResult | ErrorResult | { kind: 'ready' };

/** Messages between the first pass (datasets/images/cache.ts, through decode-pool.ts) and the decode workers. */
export interface DecodeJob {
  jobId: number;
  range: DecodeRange;
  /** Planar uint8 slots the range decodes into (shared with the caller). */
  target: SharedArrayBuffer;
}

export type FromDecodeWorker =
  /** `decoded` images done since the last message. */
  | { kind: 'progress'; jobId: number; decoded: number }
  | { kind: 'decoded'; jobId: number; decoded: number; failures: RangeFailure[] }
  | ErrorResult;
