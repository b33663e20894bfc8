import * as tf from '@tensorflow/tfjs';
import { createRegistries, nativeLoader } from '@tessera/core';
import { afterAll, describe, expect, it } from 'vitest';
import { registerData } from '../index.ts';
import { batchesMadeByWorkers } from './pool.ts';

/*
 * On the native backend a dataset that does not say `workers` makes its batches on the training
 * thread, as TensorFlow ops on TensorFlow's own threads (pool.ts: a WebAssembly worker took more
 * of each training step than the transforms cost there); `workers: N` still starts workers.
 */

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('batch workers on the native backend', () => {
  it('are not used by default, and are when a dataset asks for them', async (context) => {
    const loaded = await nativeLoader('tensorflow').load({});
    if (!loaded.ok) context.skip(`the native backend is not set up here (pnpm setup:tensorflow): ${loaded.why}`);
    expect(tf.getBackend()).toBe('tensorflow');
    const registries = registerData(createRegistries());
    const made = () => batchesMadeByWorkers().reduce((a, b) => a + b, 0);
    const epoch = async (workers?: number) => {
      const params = { train_size: 24, test_size: 8, num_classes: 3, image_shape: [8, 8, 3], transforms: [{ type: 'random_flip' }], ...(workers === undefined ? {} : { workers }) };
      const dataset = await registries.datasets.get('synthetic').create(params, { configDir: '.', seed: 5, registries, log: () => {} });
      const pixels: number[] = [];
      for await (const batch of dataset.batches('train', { batchSize: 8, training: true, seed: 1, epoch: 0 })) {
        pixels.push(...(await batch.x.data()));
        tf.dispose([batch.x, batch.y]);
      }
      return pixels;
    };
    const before = made();
    const byDefault = await epoch();
    expect(made(), 'batches made by workers with the default').toBe(before);
    const pooled = await epoch(1);
    expect(made() - before, 'batches made by the one worker asked for').toBe(3);
    // The same images and flips wherever they are made.
    expect(pooled).toEqual(byDefault);
  });
});
