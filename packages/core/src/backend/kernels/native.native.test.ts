import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FUSED_KERNELS } from './index.ts';
import { useNativeBackend } from './testing.ts';

/*
 * The native backend's fused kernels (TensorFlow custom ops from <kernel>/native.cc)
 * against the kernels' float64 references, run through tf.engine().runKernel as the primitives
 * call them. Skipped where the native backend is not set up (pnpm setup:tensorflow); where it is,
 * the op library must be there too, since the same script builds both.
 */
const requireNative = useNativeBackend();

describe('native fused kernels (TensorFlow custom ops)', () => {
  it('leaks no tensors, and reports bad inputs as errors, not crashes', (context) => {
    requireNative(context);
    const x = tf.ones([4, 8]);
    const gamma = tf.ones([8]);
    const before = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      tf.tidy(() => {
        const [y, dydx] = tf.engine().runKernel(FUSED_KERNELS.geluExact, { x }) as tf.Tensor[];
        const [normed, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x: y!, gamma, beta: gamma }, { epsilon: 1e-6 }) as tf.Tensor[];
        tf.engine().runKernel(FUSED_KERNELS.layerNormGrad, { dy: dydx!, x: normed!, mean: mean!, rstd: rstd!, gamma });
        tf.engine().runKernel(FUSED_KERNELS.dropout, { x: normed! }, { rate: 0.5, seed: step });
      });
      expect(tf.memory().numTensors).toBe(before);
    }
    expect(() => tf.tidy(() => tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x, gamma: tf.ones([3]), beta: gamma }, { epsilon: 1e-6 }))).toThrow(
      /gamma must be \[8\]/,
    );
    expect(() => tf.tidy(() => tf.engine().runKernel(FUSED_KERNELS.dropout, { x }, { rate: 1, seed: 0 }))).toThrow(/rate must be in \[0, 1\)/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, gamma]);
  });
});
