import type * as tf from '@tensorflow/tfjs';
import { Registry, type EntryBase } from './registry.ts';

/* ------------------------------------------------------------------------------------------ *
 * The kinds of entries Tessera knows. Each kind is a closed registry; packages/models,        *
 * packages/data and core itself fill them through explicit `register...(registries)` calls    *
 * made by the composition root. See docs/architecture.md.                                     *
 * ------------------------------------------------------------------------------------------ */

/** Where a config value came from, for located errors. */
export interface SourceLocation {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

/** Everything a block factory may need besides its own params. */
export interface BlockContext {
  /** Scoped, unique layer name, e.g. "block_2/token_mixing/dense_1". Use it as the layer's name. */
  name: string;
  /** Deterministic seed for this layer's initializers (derived from the run seed and `name`). */
  seed: number;
}

/**
 * A model primitive: the YAML `{type: dense, units: 64, ...}` becomes `create(params, ctx)`,
 * a tf.layers.Layer that the graph builder applies to symbolic tensors.
 */
export interface BlockEntry<P = any> extends EntryBase {
  create(params: P, ctx: BlockContext): tf.layers.Layer;
}

export type Split = 'train' | 'validation' | 'test';

export interface DatasetInfo {
  name: string;
  numClasses: number;
  /** Shape of one example as the model sees it (after deterministic transforms), e.g. [64, 64, 3]. */
  inputShape: number[];
  /**
   * Shape of one example as the dataset stores it, before any transform, e.g. CIFAR's [32, 32, 3]:
   * what a saved model's predictor takes. Absent: `inputShape` (a dataset without transforms).
   */
  rawShape?: number[];
  labelNames?: string[];
  /** Number of examples per split. */
  counts: Record<Split, number>;
  /** A stable hash of the source data, for caches. */
  fingerprint: string;
  /** Facts about the loaded data that a run records as `dataset.<key>` params (e.g. skipped_images). */
  stats?: Record<string, number | string>;
}

export interface Batch {
  /** float32 [batch, ...inputShape], transforms applied. The consumer disposes it. */
  x: tf.Tensor;
  /** int32 [batch] class indices. The consumer disposes it. */
  y: tf.Tensor1D;
  /**
   * float32 [batch, numClasses] soft targets, present only when a label-mixing transform
   * (mixup, cutmix) ran; each row sums to 1. When present the loss must use it instead of `y`
   * (`y` then holds the dominant class, for accuracy). The consumer disposes it.
   */
  yOneHot?: tf.Tensor2D;
}

export interface BatchOptions {
  batchSize: number;
  /** Shuffle (seeded by `seed` and `epoch`) and apply the random transforms. */
  training: boolean;
  seed: number;
  epoch: number;
}

/** A ready input pipeline: source + split + transforms + batching. */
export interface Dataset {
  info: DatasetInfo;
  numBatches(split: Split, batchSize: number): number;
  batches(split: Split, options: BatchOptions): AsyncIterable<Batch>;
  /** State the model needs at inference time (e.g. normalization statistics), JSON-serialisable. */
  state(): Record<string, unknown>;
  /** Applies the deterministic (inference) transforms to raw uint8 images [n, h, w, c]. */
  preprocess(images: tf.Tensor4D): tf.Tensor;
}

export interface DatasetContext {
  /** Directory of the experiment file, for relative paths. */
  configDir: string;
  seed: number;
  registries: Registries;
  log: (message: string) => void;
  /**
   * Optional: maps a config path (e.g. ['data', 'dir']) to where it was written, so a dataset
   * can throw a located ConfigError about its own params. The loader's `locate` fits.
   */
  locate?: (path: readonly (string | number)[]) => SourceLocation | undefined;
}

/** What a dataset declares about its examples before any data is read. */
export interface DataShape {
  /** Shape of one example as the model sees it (after the transforms), e.g. [64, 64, 3]; `DatasetInfo.inputShape` once created. */
  inputShape: number[];
  numClasses: number;
}

/**
 * What `describe` gets: the registries, and where the experiment file is (for an entry whose
 * class count comes from the user's files, e.g. class folder names: listed, never decoded).
 */
export interface DataShapeContext {
  registries: Registries;
  configDir?: string;
  locate?: (path: readonly (string | number)[]) => SourceLocation | undefined;
}

/** A dataset source: `data: {type: cifar100, ...}`; its params include the `transforms` list. */
export interface DatasetEntry<P = any> extends EntryBase {
  /**
   * The examples' shape and class count from the params alone (the source's shape through each
   * transform's `outputShape`): no file is read, so the model is built and checked before any
   * data loads (`exp validate`, `summary` and `export` never load it for the shape).
   */
  describe(params: P, ctx: DataShapeContext): DataShape;
  create(params: P, ctx: DatasetContext): Promise<Dataset>;
}

/** Adapts a transform to training data before use (e.g. normalization statistics). */
export interface TransformState {
  [key: string]: unknown;
}

/** A preprocessing / augmentation step over a float32 batch [n, h, w, c]. */
export interface Transform {
  /** Random transforms only act when `training` is true. */
  readonly random: boolean;
  /** Output shape of one example given the input shape. */
  outputShape(inputShape: number[]): number[];
  apply(x: tf.Tensor4D, options: { training: boolean; seed: number }): tf.Tensor4D;
  /**
   * Optional: learns state from the raw uint8 training images before use (normalization
   * statistics). The dataset calls it once per data fingerprint and caches the result.
   */
  adapt?(images: RawImages): TransformState;
  /**
   * Optional, with `adapt`: the same state learnt from images that arrive in chunks, read once in
   * order (a training split streamed from disk, larger than memory: one chunk in memory at a
   * time). Must equal `adapt` over the chunks put end to end. A transform without it cannot learn
   * from a streamed split (the dataset says so before decoding).
   */
  adaptChunks?(chunks: Iterable<RawImages>): TransformState;
  /** Optional: puts back state returned by `adapt` (from a cache or a saved model). */
  restore?(state: TransformState): void;
  /**
   * Optional, for transforms that mix examples and so their labels (mixup, cutmix): used instead
   * of `apply` in training, with `yOneHot` float32 [n, numClasses].
   */
  applyWithLabels?(
    x: tf.Tensor4D,
    yOneHot: tf.Tensor2D,
    options: { training: boolean; seed: number },
  ): { x: tf.Tensor4D; yOneHot: tf.Tensor2D };
}

/**
 * Raw uint8 images handed to `Transform.adapt`: `count` images of [height, width, channels],
 * image i's channel c plane (height*width bytes, row-major) starts at
 * `offset + i*stride + c*height*width` (the CIFAR binary record layout, no copy needed).
 */
export interface RawImages {
  bytes: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  offset: number;
  stride: number;
}

export interface TransformEntry<P = any> extends EntryBase {
  create(params: P): Transform;
}

/** Optimizers, LR schedules and callbacks are registered by core's engine itself. */
export interface OptimizerEntry<P = any> extends EntryBase {
  create(params: P): unknown;
}
export interface ScheduleEntry<P = any> extends EntryBase {
  create(params: P): unknown;
}
export interface CallbackEntry<P = any> extends EntryBase {
  create(params: P): unknown;
}

export interface Registries {
  blocks: Registry<BlockEntry>;
  datasets: Registry<DatasetEntry>;
  transforms: Registry<TransformEntry>;
  optimizers: Registry<OptimizerEntry>;
  schedules: Registry<ScheduleEntry>;
  callbacks: Registry<CallbackEntry>;
}

export function createRegistries(): Registries {
  return {
    blocks: new Registry<BlockEntry>('block'),
    datasets: new Registry<DatasetEntry>('dataset'),
    transforms: new Registry<TransformEntry>('transform'),
    optimizers: new Registry<OptimizerEntry>('optimizer'),
    schedules: new Registry<ScheduleEntry>('schedule'),
    callbacks: new Registry<CallbackEntry>('callback'),
  };
}
