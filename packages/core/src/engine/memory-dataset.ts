import * as tf from '@tensorflow/tfjs';
import type { Batch, BatchOptions, Dataset, Split } from '../registry/kinds.ts';
import { Rng, SEED_STREAMS, stepSeed } from '../random/index.ts';

/**
 * A Dataset over arrays already in memory: for programs that bring their own data and for the
 * engine's tests (no files, no transforms). Training batches are shuffled by (seed, epoch); the
 * last partial batch is kept, as Keras does.
 */
export interface MemorySplit {
  /** float32 examples, one after another, each of `inputShape`. */
  x: Float32Array;
  y: Int32Array;
}

export function createMemoryDataset(
  name: string,
  inputShape: number[],
  numClasses: number,
  splits: Record<Split, MemorySplit>,
): Dataset {
  const exampleSize = inputShape.reduce((a, b) => a * b, 1);
  const count = (split: Split) => splits[split].y.length;
  return {
    info: {
      name,
      numClasses,
      inputShape,
      counts: { train: count('train'), validation: count('validation'), test: count('test') },
      fingerprint: `memory:${name}`,
    },
    numBatches: (split, batchSize) => Math.ceil(count(split) / batchSize),
    async *batches(split: Split, options: BatchOptions): AsyncIterable<Batch> {
      const { x, y } = splits[split];
      const order = Array.from({ length: y.length }, (_, i) => i);
      if (options.training) new Rng(stepSeed(options.seed, options.epoch, SEED_STREAMS.memoryShuffle)).shuffle(order);
      for (let start = 0; start < order.length; start += options.batchSize) {
        const indices = order.slice(start, start + options.batchSize);
        const xb = new Float32Array(indices.length * exampleSize);
        const yb = new Int32Array(indices.length);
        indices.forEach((index, row) => {
          xb.set(x.subarray(index * exampleSize, (index + 1) * exampleSize), row * exampleSize);
          yb[row] = y[index]!;
        });
        yield { x: tf.tensor(xb, [indices.length, ...inputShape]), y: tf.tensor1d(yb, 'int32') };
      }
    },
    state: () => ({}),
    preprocess: (images) => tf.cast(images, 'float32'),
  };
}
