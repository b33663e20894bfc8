import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRegistries } from '@tessera/core';
import { Affine, affineEntry, register } from './affine.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('the example plugin: ResMLP Affine', () => {
  it('computes alpha * x + beta per channel, alpha from init_alpha and beta from 0', () => {
    const layer = new Affine({ initAlpha: 0.5 });
    const x = tf.tensor3d([[[1, 2, 3], [4, 5, 6]]]);
    expect(Array.from((layer.apply(x) as tf.Tensor).dataSync())).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    layer.setWeights([tf.tensor1d([1, 2, 3]), tf.tensor1d([10, 20, 30])]);
    expect(Array.from((layer.apply(x) as tf.Tensor).dataSync())).toEqual([11, 24, 39, 14, 30, 48]);
    expect(layer.trainableWeights.map((w) => w.shape)).toEqual([[3], [3]]);
  });

  it('registers through the same API as the built-ins', () => {
    const registries = createRegistries();
    register(registries);
    expect(registries.blocks.get('affine')).toBe(affineEntry);
    expect(() => register(registries)).toThrow(/already registered/);
  });
});
