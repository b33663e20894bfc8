import { afterEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRegistries, type Dataset, type Registries } from '../registry/kinds.ts';
import { registerEngine } from './register.ts';
import { createMemoryDataset, type MemorySplit } from './memory-dataset.ts';
import { Rng } from '../random/index.ts';
import { NonFiniteLossError, train, type TrainOptions } from './trainer.ts';
import type { ProgressReporter } from './progress.ts';
import type { TrainConfig } from './train-schema.ts';

const CLASSES = 4;
const SHAPE = [4, 4, 1];

/** Four well-separated Gaussian clusters in 16 dimensions. */
function clusters(n: number, seed: number): MemorySplit {
  const rng = new Rng(seed);
  const random = () => rng.next();
  const centers = Array.from({ length: CLASSES }, () => Array.from({ length: 16 }, () => random() * 4 - 2));
  const x = new Float32Array(n * 16);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % CLASSES;
    y[i] = c;
    for (let d = 0; d < 16; d++) x[i * 16 + d] = centers[c]![d]! + (random() - 0.5) * 2;
  }
  return x && { x, y };
}

function dataset(): Dataset {
  return createMemoryDataset('clusters', SHAPE, CLASSES, { train: clusters(96, 1), validation: clusters(32, 1), test: clusters(32, 1) });
}

/** Seeded initialisers and explicit names: two calls build identical models. */
function model(): tf.LayersModel {
  const input = tf.input({ shape: SHAPE });
  let h = tf.layers.flatten({ name: 'flatten' }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.dense({ units: 16, activation: 'relu', name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.dropout({ rate: 0.3, name: 'dropout' }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: CLASSES, name: 'logits', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

const quiet: ProgressReporter = { epochStart() {}, step() {}, epochEnd() {}, message() {} };

function registries(): Registries {
  const r = createRegistries();
  registerEngine(r);
  return r;
}

const baseConfig: TrainConfig = {
  epochs: 4,
  batch_size: 16,
  optimizer: { type: 'adamw', learning_rate: 0.01, weight_decay: 0.001 },
  callbacks: [
    { type: 'reduce_lr_on_plateau', monitor: 'val_loss', factor: 0.5, patience: 1 },
    { type: 'early_stopping', monitor: 'val_loss', patience: 10, restore_best_weights: true },
  ],
};

function options(overrides: Partial<TrainOptions> = {}): TrainOptions {
  return { model: model(), dataset: dataset(), train: baseConfig, registries: registries(), seed: 7, progress: quiet, ...overrides };
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-trainer-'));
  dirs.push(dir);
  return join(dir, 'checkpoint');
}
afterEach(() => {
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
  tf.disposeVariables();
});

describe('train', () => {
  it('learns a separable problem and reports Keras-named metrics every epoch', async () => {
    const result = await train(options());
    expect(result.status).toBe('FINISHED');
    expect(result.history).toHaveLength(4);
    expect(Object.keys(result.history[0]!).sort()).toEqual(
      ['accuracy', 'epoch_time', 'images_per_second', 'learning_rate', 'loss', 'top5_accuracy', 'val_accuracy', 'val_loss', 'val_top5_accuracy'].sort(),
    );
    expect(result.history[3]!.val_accuracy).toBeGreaterThan(0.9); // chance is 0.25
    expect(result.history[3]!.loss).toBeLessThan(result.history[0]!.loss!);
    expect(result.test!.test_accuracy).toBeGreaterThan(0.9);
    expect(result.test!.test_top5_accuracy).toBe(1); // 4 classes: always in the top 5
  });

  it('keeps the number of live tensors flat across epochs', async () => {
    const counts: number[] = [];
    await train(options({ onEpochEnd: async () => void counts.push(tf.memory().numTensors) }));
    expect(counts).toHaveLength(4);
    // Epoch 1 creates the optimizer slots and early stopping's best weights; then nothing grows.
    expect(new Set(counts.slice(1)).size).toBe(1);
  });

  it('resumed from a mid-epoch stop, ends exactly where an uninterrupted run ends', async () => {
    const straight = await train(options({ checkpointDir: tempDir() }));

    const checkpointDir = tempDir();
    let steps = 0;
    const first = await train(options({ checkpointDir, shouldStop: () => ++steps === 9 })); // epoch 2, step 3
    expect(first.status).toBe('KILLED');
    expect(first.history).toHaveLength(1);
    const resumedModel = model();
    const resumed = await train(options({ model: resumedModel, checkpointDir, resume: true }));
    expect(resumed.status).toBe('FINISHED');
    expect(resumed.history).toHaveLength(4);
    for (const [epoch, logs] of straight.history.entries()) {
      for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'learning_rate']) {
        expect(resumed.history[epoch]![key], `${key} at epoch ${epoch + 1}`).toBeCloseTo(logs[key]!, 6);
      }
    }
    expect(resumed.test!.test_loss).toBeCloseTo(straight.test!.test_loss!, 6);
  });

  it('stops as failed on a NaN loss, naming the step, without applying the update', async () => {
    const good = dataset();
    const poisoned: Dataset = {
      ...good,
      async *batches(split, opts) {
        let step = 0;
        for await (const batch of good.batches(split, opts)) {
          if (opts.training && opts.epoch === 1 && step === 2) {
            const x = tf.mul(batch.x, NaN);
            batch.x.dispose();
            yield { ...batch, x };
          } else {
            yield batch;
          }
          step += 1;
        }
      },
    };
    const m = model();
    let weightsBefore: Float32Array | undefined;
    const run = train(options({
      model: m,
      dataset: poisoned,
      // Polled after every step: the last snapshot is taken just before the poisoned step.
      shouldStop: () => {
        weightsBefore = m.getWeights()[0]!.dataSync().slice() as Float32Array;
        return false;
      },
    }));
    await expect(run).rejects.toThrow(NonFiniteLossError);
    await expect(run).rejects.toThrow(/loss is NaN at epoch 2, step 3 \(optimizer step 9\)/);
    expect(Array.from(m.getWeights()[0]!.dataSync())).toEqual(Array.from(weightsBefore!));
  });

  it('puts back the best epoch\'s weights at the end (early_stopping) and lowers the rate on plateaus', async () => {
    const m = model();
    const weightsByEpoch: number[][] = [];
    const result = await train(options({
      model: m,
      train: {
        ...baseConfig,
        epochs: 4,
        callbacks: [
          // min_delta 10: no epoch improves on the first, so from the second on the rate halves
          // after every epoch (the logs show the rate the epoch was trained with, as Keras logs it).
          { type: 'reduce_lr_on_plateau', monitor: 'val_loss', factor: 0.5, patience: 1, min_delta: 10 },
          { type: 'early_stopping', monitor: 'val_accuracy', patience: 10, restore_best_weights: true },
        ],
      },
      onEpochEnd: async () => void weightsByEpoch.push(Array.from(m.getWeights()[0]!.dataSync())),
    }));
    expect(result.history.map((h) => h.learning_rate)).toEqual([0.01, 0.01, 0.005, 0.0025]);
    // val_accuracy is watched upwards; ties keep the earlier epoch.
    const accuracies = result.history.map((h) => h.val_accuracy!);
    const best = accuracies.indexOf(Math.max(...accuracies));
    expect(Array.from(m.getWeights()[0]!.dataSync())).toEqual(weightsByEpoch[best]);
  });
});
