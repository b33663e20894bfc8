/** Messages between the training thread (pool.ts) and the batch workers (batch-worker.ts). */
import type { EntryConfig } from '@tessera/core/registry';
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
}

export type FromWorker = BatchResult | ErrorResult | { kind: 'ready' };
