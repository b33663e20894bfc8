import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { nativeLoader } from '@tessera/core';
import { selfAttention } from './multi_head_attention.ts';

/*
 * On the native backend selfAttention's backward multiplies through the transpose flags and its
 * dropout is the fused kernel; on the plain-JS cpu backend it transposes explicitly and multiplies
 * by an uploaded mask (multi_head_attention.test.ts checks that path against autodiff). Both must
 * give the same output and gradients, dropout included (the same mask from the same seed).
 */

function run(): number[][] {
  return tf.tidy(() => {
    const options = { numHeads: 2, keyDim: 3, valueDim: 4, rate: 0.3, seed: 77 };
    const x = tf.randomUniform([3, 5, 8], -1, 1, 'float32', 1);
    const kernels = [[8, 6], [8, 6], [8, 8], [8, 8]].map((shape, n) => tf.randomUniform(shape, -1, 1, 'float32', 2 + n));
    const biases = [[6], [6], [8], [8]].map((shape, n) => tf.randomUniform(shape, -1, 1, 'float32', 6 + n));
    const dy = tf.randomUniform([3, 5, 8], -1, 1, 'float32', 10);
    const f = (...args: tf.Tensor[]) => selfAttention(args[0]!, args.slice(1, 5), args.slice(5), options);
    const grads = tf.grads(f)([x, ...kernels, ...biases], dy);
    return [f(x, ...kernels, ...biases), ...grads].map((t) => Array.from(t.dataSync()));
  });
}

describe('selfAttention on the native backend', () => {
  it('gives the output and gradients of the cpu backend, attention dropout included', async (context) => {
    await tf.setBackend('cpu');
    const reference = run();
    const loaded = await nativeLoader('tensorflow').load({});
    if (!loaded.ok) context.skip(`the native backend is not set up here (pnpm setup:tensorflow): ${loaded.why}`);
    try {
      expect(tf.getBackend()).toBe('tensorflow');
      const native = run();
      expect(native).toHaveLength(reference.length);
      native.forEach((values, n) => {
        expect(values, `tensor ${n}`).toHaveLength(reference[n]!.length);
        values.forEach((v, i) => expect(v, `tensor ${n}[${i}]`).toBeCloseTo(reference[n]![i]!, 4));
      });
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
