import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Batch, BatchOptions, Dataset, DatasetInfo, EntryConfig, RawImages, Registries, Split, Transform, TransformState } from '@tessera/core/registry';
import { deriveSeed, Rng } from './random.ts';
import { gatherBatch, type SplitView } from './store.ts';

/** A transform as configured: its YAML params (for cache keys) and the live object. */
export interface ConfiguredTransform {
  type: string;
  params: Record<string, unknown>;
  transform: Transform;
}

export interface PipelineSpec {
  info: Omit<DatasetInfo, 'inputShape' | 'counts'>;
  splits: Record<Split, SplitView>;
  /** Images that adaptive transforms learn from (the reference: all raw training images). */
  adaptOn: RawImages;
  transforms: ConfiguredTransform[];
  /** Where adapted transform state is cached, keyed by the data fingerprint; none: no cache. */
  cacheDir?: string;
  log: (message: string) => void;
}

/** Salt that separates the shuffle's random stream from the transforms'. */
const SHUFFLE = 0x5f3759df;

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
  const inputShape = spec.transforms.reduce((shape, { transform }) => transform.outputShape(shape), [raw.height, raw.width, raw.channels]);
  const counts = { train: 0, validation: 0, test: 0 } as Record<Split, number>;
  for (const split of Object.keys(spec.splits) as Split[]) counts[split] = spec.splits[split].indices.length;
  const info: DatasetInfo = { ...spec.info, inputShape, counts };
  const mixes = spec.transforms.some(({ transform }) => transform.applyWithLabels);

  const applyTransforms = (x: tf.Tensor4D, labels: tf.Tensor1D | undefined, training: boolean, batchSeed: (i: number) => number) =>
    tf.tidy(() => {
      let images = x;
      let soft: tf.Tensor2D | undefined = training && mixes && labels ? tf.oneHot(labels, info.numClasses).toFloat() as tf.Tensor2D : undefined;
      spec.transforms.forEach(({ transform }, i) => {
        if (transform.random && !training) return;
        const options = { training, seed: batchSeed(i) };
        if (transform.applyWithLabels && soft) ({ x: images, yOneHot: soft } = transform.applyWithLabels(images, soft, options));
        else images = transform.apply(images, options);
      });
      return soft ? { images, soft } : { images };
    });

  return {
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
      const order = Int32Array.from({ length: view.indices.length }, (_, i) => i);
      if (options.training) new Rng(deriveSeed(options.seed, options.epoch, SHUFFLE)).shuffle(order);
      return batchStream(view, order, options, (host, batchIndex) => {
        const x = tf.tensor4d(host.pixels, [host.labels.length, view.set.height, view.set.width, view.set.channels]);
        const y = tf.tensor1d(host.labels, 'int32');
        const out = applyTransforms(x, y, options.training, (i) => deriveSeed(options.seed, options.epoch, batchIndex, i));
        if (out.images !== x) x.dispose();
        if (!out.soft) return { x: out.images, y };
        y.dispose();
        // With mixed labels, y names each example's heaviest class (for accuracy metrics).
        return { x: out.images, y: tf.tidy(() => tf.argMax(out.soft!, 1).toInt()) as tf.Tensor1D, yOneHot: out.soft };
      });
    },
  };
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

function adaptCached(spec: PipelineSpec, type: string, params: Record<string, unknown>, transform: Transform): TransformState {
  const key = createHash('sha1').update(JSON.stringify([spec.info.fingerprint, type, params])).digest('hex').slice(0, 16);
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
  const state = transform.adapt!(spec.adaptOn);
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

/**
 * Yields batches in `order`, the last partial batch kept. The host-side gather of the next batch
 * is started (setImmediate) as soon as one is handed out, so it runs while the consumer awaits
 * its own work; tensors are only made on demand, so an abandoned stream leaks nothing.
 */
function batchStream(
  view: SplitView,
  order: Int32Array,
  options: BatchOptions,
  toBatch: (host: HostBatch, batchIndex: number) => Batch,
): AsyncIterable<Batch> {
  const total = Math.ceil(order.length / options.batchSize);
  const gather = (b: number) => gatherBatch(view, order, b * options.batchSize, Math.min(order.length, (b + 1) * options.batchSize));
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
