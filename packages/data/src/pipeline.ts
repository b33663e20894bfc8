import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Batch, BatchOptions, Dataset, DatasetInfo, EntryConfig, RawImages, Registries, Split, Transform, TransformState } from '@tessera/core/registry';
import { deriveSeed, fingerprint, Rng, SEED_STREAMS } from '@tessera/core/random';
import { transformEntries } from './augment/index.ts';
import { gatherBatch, range, type ImageSet, type SplitView } from './store.ts';
import { attachWorkers, defaultWorkerCount, shareSet, startWorkers, WorkerSetupError, type WorkerHandle } from './workers/pool.ts';
import { workersCanLoad } from './workers/spawn.ts';
import type { BatchResult } from './workers/protocol.ts';

/** A transform as configured: its YAML params (for cache keys) and the live object. */
export interface ConfiguredTransform {
  type: string;
  params: Record<string, unknown>;
  transform: Transform;
  /** The plugin module that registered its type (absolute path), if a plugin did: batch workers load it too. */
  plugin?: string;
}

export interface PipelineSpec {
  info: Omit<DatasetInfo, 'inputShape' | 'rawShape' | 'counts'>;
  splits: Record<Split, SplitView>;
  /**
   * Images that adaptive transforms learn from (the reference: all raw training images): in
   * memory, or read chunk by chunk when the training split streams from disk.
   */
  adaptOn: RawImages | ChunkedImages;
  transforms: ConfiguredTransform[];
  /** Where adapted transform state is cached, keyed by the data fingerprint; none: no cache. */
  cacheDir?: string;
  /**
   * Worker threads that gather and transform batches off the training thread (0: on it).
   * Default: `defaultWorkerCount()`. Batches are the same for any count >= 1.
   */
  workers?: number;
  /**
   * Splits read from disk batch by batch instead of from `splits` (a decoded cache larger than
   * memory); their `splits` entry is not used.
   */
  streams?: Partial<Record<Split, SplitStream>>;
  log: (message: string) => void;
}

/** Images too many for memory, read one chunk at a time (a streamed split's shards, in order). */
export interface ChunkedImages {
  count: number;
  height: number;
  width: number;
  channels: number;
  chunks(): Iterable<RawImages>;
}

/** A split streamed from shards: one epoch at a time, its images taken batch by batch, in order. */
export interface SplitStream {
  count: number;
  open(training: boolean, seed: number, epoch: number): { take(n: number): ImageSet };
}

/**
 * Builds the Dataset: adapts the transforms that learn state (once per data fingerprint, cached),
 * then serves batches: shuffled per epoch in training, uint8 -> float32 NHWC per batch, the
 * transforms applied as TF.js ops on the whole batch inside tidy.
 */
export async function createPipeline(spec: PipelineSpec): Promise<Dataset> {
  const stateKeys = transformStateKeys(spec.transforms.map(({ type }) => type));
  const states: Record<string, TransformState> = {};
  spec.transforms.forEach(({ type, params, transform }, i) => {
    if (!transform.adapt) return;
    states[stateKeys[i]!] = adaptCached(spec, type, params, transform);
  });

  const raw = spec.adaptOn;
  const rawShape = [raw.height, raw.width, raw.channels];
  const inputShape = spec.transforms.reduce((shape, { transform }) => transform.outputShape(shape), rawShape);
  const counts = { train: 0, validation: 0, test: 0 } as Record<Split, number>;
  for (const split of Object.keys(spec.splits) as Split[]) counts[split] = spec.streams?.[split]?.count ?? spec.splits[split].indices.length;
  const info: DatasetInfo = { ...spec.info, rawShape, inputShape, counts };

  const transforms = spec.transforms.map(({ transform }) => transform);
  const applyTransforms = (x: tf.Tensor4D, labels: tf.Tensor1D | undefined, training: boolean, batchSeed: (i: number) => number) =>
    runTransforms(transforms, x, labels, training, info.numClasses, batchSeed);

  // Workers rebuild the transforms from the built-in registry and the plugins that registered
  // the others (loaded there as here). A type a program registered by hand exists only here, and
  // a TypeScript plugin needs tsx, which only workers running from source have: such a pipeline
  // stays on the training thread.
  const builtIn = new Set(transformEntries.map((e) => e.type));
  const foreign = spec.transforms.filter(({ type, plugin }) => !builtIn.has(type) && !(plugin && workersCanLoad(plugin))).map(({ type }) => type);
  const plugins = [...new Set(spec.transforms.flatMap(({ type, plugin }) => (plugin && !builtIn.has(type) ? [plugin] : [])))];
  let workerCount = spec.workers ?? defaultWorkerCount();
  if (workerCount > 0 && foreign.length > 0) {
    spec.log(`transforms ${foreign.join(', ')} are not built in (nor from a plugin the batch workers can load): batches are made on the training thread`);
    workerCount = 0;
  }
  const sets = [...new Set((Object.keys(spec.splits) as Split[]).filter((split) => !spec.streams?.[split]).map((split) => spec.splits[split].set))];
  let workers: WorkerHandle | undefined;
  // Started now, so their start-up (a second or two) overlaps building the model.
  if (workerCount > 0) startWorkers(workerCount);

  const dataset: Dataset = {
    info,
    numBatches: (split, batchSize) => Math.ceil(counts[split] / batchSize),
    state: () => structuredClone(states),
    preprocess: (images) =>
      tf.tidy(() => applyTransforms(tf.cast(images, 'float32'), undefined, false, () => 0).images),
    batches(split: Split, options: BatchOptions): AsyncIterable<Batch> {
      const view = spec.splits[split];
      if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
        throw new RangeError(`batch size must be a positive integer, got ${options.batchSize}`);
      }
      const stream = spec.streams?.[split];
      // A stream gives its images in its own (seeded) order: `order` only counts positions.
      const epochStream = stream?.open(options.training, options.seed, options.epoch);
      const order = Int32Array.from({ length: stream ? stream.count : view.indices.length }, (_, i) => i);
      if (options.training && !stream) new Rng(deriveSeed(options.seed, options.epoch, SEED_STREAMS.shuffle)).shuffle(order);
      const span = (b: number) => [b * options.batchSize, Math.min(order.length, (b + 1) * options.batchSize)] as const;
      // A batch's source: images in a registered set (by index), or a streamed batch set.
      const source = (b: number): BatchSource => {
        const [from, to] = span(b);
        // Batches are requested once each, in order, so the stream is read front to back.
        if (epochStream) return { set: epochStream.take(to - from), indices: range(0, to - from) };
        const indices = new Int32Array(to - from);
        for (let k = from; k < to; k++) indices[k - from] = view.indices[order[k]!]!;
        return { set: sets.indexOf(view.set), indices };
      };
      const total = Math.ceil(order.length / options.batchSize);
      const gather = ({ set, indices }: BatchSource) => gatherBatch({ set: typeof set === 'number' ? sets[set]! : set, indices }, range(0, indices.length), 0, indices.length);
      const toBatch = (host: HostBatch, batchIndex: number): Batch => {
        const x = tf.tensor4d(host.pixels, [host.labels.length, rawShape[0]!, rawShape[1]!, rawShape[2]!]);
        const y = tf.tensor1d(host.labels, 'int32');
        const out = applyTransforms(x, y, options.training, (i) => deriveSeed(options.seed, options.epoch, batchIndex, i));
        if (out.images !== x) x.dispose();
        if (!out.soft) return { x: out.images, y };
        y.dispose();
        // With mixed labels, y names each example's heaviest class (for accuracy metrics).
        return { x: out.images, y: tf.tidy(() => tf.argMax(out.soft!, 1).toInt()) as tf.Tensor1D, yOneHot: out.soft };
      };
      if (workerCount > 0) {
        workers ??= attachWorkers(dataset, workerCount, {
          sets: sets.map(shareSet),
          specs: spec.transforms.map(({ type, params }) => ({ type, ...params })),
          state: states,
          numClasses: info.numClasses,
          plugins,
        });
        return workerBatchStream(workers, total, source, options, 2 * workerCount, info.numClasses, {
          onThread: (batch, batchIndex) => toBatch(gather(batch), batchIndex),
          // The workers could not set the pipeline up (a plugin that loads here but not there):
          // the same batches, made here from now on (they depend only on the seeds).
          failedSetup: (error) => {
            if (workerCount > 0) spec.log(`the batch workers could not set up this pipeline (${error.message}): batches are made on the training thread`);
            workerCount = 0;
          },
        });
      }
      return batchStream(total, (b) => gather(source(b)), toBatch);
    },
  };
  return dataset;
}

/**
 * Yields batches made by the workers, in order, keeping `depth` batches in flight ahead of the
 * consumer: while the model trains on batch b, batches b+1..b+depth are being made. Only the
 * tensor creation (a copy into the backend) happens on the training thread.
 */
function workerBatchStream(
  workers: WorkerHandle,
  total: number,
  source: (b: number) => BatchSource,
  options: BatchOptions,
  depth: number,
  numClasses: number,
  fallback: { onThread: (batch: BatchSource, batchIndex: number) => Batch; failedSetup: (error: WorkerSetupError) => void },
): AsyncIterable<Batch> {
  const request = (b: number) => {
    const batch = source(b);
    const result = workers.run(batch.set, batch.indices, { training: options.training, seed: options.seed, epoch: options.epoch, batchIndex: b });
    result.catch(() => {}); // awaited in order below; an abandoned one must not be an unhandled rejection
    return { batch, result };
  };
  return {
    [Symbol.asyncIterator]() {
      // Each batch's images are kept with its request: a streamed split is read once, so a batch
      // the workers could not make is made here from the images already taken.
      const inFlight = new Map<number, { batch: BatchSource; result: Promise<BatchResult> }>();
      let requested = 0;
      let delivered = 0;
      let onThread = false;
      return {
        async next(): Promise<IteratorResult<Batch>> {
          if (delivered >= total) return { done: true, value: undefined };
          const index = delivered++;
          if (onThread) {
            const pending = inFlight.get(index);
            inFlight.delete(index);
            return { done: false, value: fallback.onThread(pending?.batch ?? source(index), index) };
          }
          while (requested < total && requested <= index + depth) inFlight.set(requested, request(requested++));
          const { batch, result: pending } = inFlight.get(index)!;
          inFlight.delete(index);
          let result: BatchResult;
          try {
            result = await pending;
          } catch (error) {
            if (!(error instanceof WorkerSetupError)) throw error;
            fallback.failedSetup(error);
            onThread = true;
            return { done: false, value: fallback.onThread(batch, index) };
          }
          const x = tf.tensor4d(result.pixels, result.shape);
          if (!result.soft) return { done: false, value: { x, y: tf.tensor1d(result.labels, 'int32') } };
          // With mixed labels, y names each example's heaviest class (for accuracy metrics).
          const n = result.shape[0];
          const dominant = new Int32Array(n);
          for (let i = 0; i < n; i++) {
            let best = 0;
            for (let c = 1; c < numClasses; c++) if (result.soft[i * numClasses + c]! > result.soft[i * numClasses + best]!) best = c;
            dominant[i] = best;
          }
          return { done: false, value: { x, y: tf.tensor1d(dominant, 'int32'), yOneHot: tf.tensor2d(result.soft, [n, numClasses]) } };
        },
        async return(): Promise<IteratorResult<Batch>> {
          delivered = total;
          inFlight.clear();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * Applies the transforms to a float32 batch inside one tidy: random ones only in training, each
 * seeded by `batchSeed(i)`; label-mixing ones turn the labels into soft targets. The same code
 * runs on the training thread and in the batch workers, so both give the same batches.
 */
export function runTransforms(
  transforms: Transform[],
  x: tf.Tensor4D,
  labels: tf.Tensor1D | undefined,
  training: boolean,
  numClasses: number,
  batchSeed: (i: number) => number,
): { images: tf.Tensor4D; soft?: tf.Tensor2D } {
  const mixes = transforms.some((transform) => transform.applyWithLabels);
  return tf.tidy(() => {
    let images = x;
    let soft: tf.Tensor2D | undefined = training && mixes && labels ? (tf.oneHot(labels, numClasses).toFloat() as tf.Tensor2D) : undefined;
    transforms.forEach((transform, i) => {
      if (transform.random && !training) return;
      const options = { training, seed: batchSeed(i) };
      if (transform.applyWithLabels && soft) ({ x: images, yOneHot: soft } = transform.applyWithLabels(images, soft, options));
      else images = transform.apply(images, options);
    });
    return soft ? { images, soft } : { images };
  });
}

/**
 * The key of each transform's state in `Dataset.state()`: its type, or `type_<index>` when the
 * type occurs more than once in the list.
 */
export function transformStateKeys(types: string[]): string[] {
  return types.map((type, i) => (types.filter((t) => t === type).length > 1 ? `${type}_${i}` : type));
}

/**
 * Rebuilds a transform list from its YAML specs and a saved `Dataset.state()`, without the data:
 * what inference needs (`exp predict`) to preprocess exactly as training did.
 */
export function restoreTransforms(
  specs: EntryConfig[],
  state: Record<string, TransformState>,
  registries: Registries,
): Transform[] {
  const keys = transformStateKeys(specs.map(({ type }) => type));
  return specs.map(({ type, ...params }, i) => {
    const transform = registries.transforms.get(type).create(params);
    const saved = state[keys[i]!];
    if (saved) transform.restore?.(saved);
    return transform;
  });
}

/**
 * Part of the adapted-state cache key. 2: a streamed training split's state is learnt from all
 * its images (with 1 it was learnt from the first 10,000, so such a cached state is not reused).
 */
const ADAPTED_STATE_VERSION = 2;

function adaptCached(spec: PipelineSpec, type: string, params: Record<string, unknown>, transform: Transform): TransformState {
  const key = fingerprint([spec.info.fingerprint, type, params, ADAPTED_STATE_VERSION]);
  const file = spec.cacheDir ? join(spec.cacheDir, 'state', `${type}-${key}.json`) : undefined;
  if (file && existsSync(file)) {
    try {
      const state = JSON.parse(readFileSync(file, 'utf8')) as TransformState;
      transform.restore?.(state);
      return state;
    } catch {
      spec.log(`ignoring unreadable cache ${file}`);
    }
  }
  const source = spec.adaptOn;
  let state: TransformState;
  if ('chunks' in source) {
    if (!transform.adaptChunks) throw new Error(`transform ${type} learns from the training images but has no adaptChunks(), so it cannot learn from a streamed split`);
    spec.log(`${type}: learning from all ${source.count} training images, one pass over the streamed shards`);
    state = transform.adaptChunks(source.chunks());
  } else state = transform.adapt!(source);
  if (file) {
    try {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(state));
      renameSync(`${file}.${process.pid}.tmp`, file);
    } catch (e) {
      spec.log(`could not cache ${file}: ${(e as Error).message}`);
    }
  }
  return state;
}

type HostBatch = ReturnType<typeof gatherBatch>;

/** A batch's images: indices into a registered set (by its index), or a streamed batch's own set. */
type BatchSource = { set: number | ImageSet; indices: Int32Array };

/**
 * Yields batches in `order`, the last partial batch kept. The host-side gather of the next batch
 * is started (setImmediate) as soon as one is handed out, so it runs while the consumer awaits
 * its own work; tensors are only made on demand, so an abandoned stream leaks nothing.
 */
function batchStream(total: number, gather: (b: number) => HostBatch, toBatch: (host: HostBatch, batchIndex: number) => Batch): AsyncIterable<Batch> {
  return {
    [Symbol.asyncIterator]() {
      let next = 0;
      let prefetched: { index: number; host: HostBatch } | undefined;
      let pending: NodeJS.Immediate | undefined;
      const stop = () => {
        if (pending) clearImmediate(pending);
        pending = undefined;
        prefetched = undefined;
        next = total;
      };
      return {
        async next(): Promise<IteratorResult<Batch>> {
          if (next >= total) return { done: true, value: undefined };
          const index = next++;
          if (pending) clearImmediate(pending);
          pending = undefined;
          const host = prefetched?.index === index ? prefetched.host : gather(index);
          prefetched = undefined;
          if (next < total) {
            const upcoming = next;
            pending = setImmediate(() => {
              pending = undefined;
              prefetched = { index: upcoming, host: gather(upcoming) };
            });
          }
          return { done: false, value: toBatch(host, index) };
        },
        async return(): Promise<IteratorResult<Batch>> {
          stop();
          return { done: true, value: undefined };
        },
      };
    },
  };
}
