import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { FUSED_KERNELS, hasFusedKernel, nativeLoader } from '@tessera/core';
import { addBias } from './common.ts';

/*
 * On the native backend addBias runs TensorFlow's BiasAdd, and its gradient BiasAddGrad (the
 * fused TesseraBiasAdd pair of backend/kernels/bias_add). Values and gradients must be those of the
 * broadcast tf.add it replaces.
 */

afterAll(async () => {
  await tf.setBackend('cpu');
});

describe('addBias on the native backend', () => {
  it('gives the values and gradients of a broadcast add, leaking nothing', async (context) => {
    const loaded = await nativeLoader('tensorflow').load({});
    if (!loaded.ok) context.skip(`the native backend is not set up here (pnpm setup:tensorflow): ${loaded.why}`);
    expect(hasFusedKernel(FUSED_KERNELS.biasAdd)).toBe(true);
    for (const shape of [[4, 5, 5, 8], [6, 8]]) {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 0, 2, 'float32', 1);
        const bias = tf.randomNormal([8], 0, 1, 'float32', 2);
        const probe = tf.randomNormal(shape, 0, 1, 'float32', 3);
        const loss = (add: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(add(a, b), probe));
        expect(Array.from(addBias(x, bias).dataSync())).toEqual(Array.from(tf.add(x, bias).dataSync()));
        const [dx, dBias] = tf.grads(loss(addBias))([x, bias]);
        const [wantDx, wantDBias] = tf.grads(loss((a, b) => tf.add(a, b)))([x, bias]);
        expect(Array.from(dx!.dataSync())).toEqual(Array.from(wantDx!.dataSync()));
        const diff = tf.max(tf.abs(tf.sub(dBias!, wantDBias!))).dataSync()[0]!;
        expect(diff).toBeLessThan(1e-5 * tf.max(tf.abs(wantDBias!)).dataSync()[0]!);
      });
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
