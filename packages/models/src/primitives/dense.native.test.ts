import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { nativeLoader } from '@tessera/core';
import { Dense } from './dense.ts';

/*
 * On the native backends a dense along a middle axis multiplies in place (one broadcast batched
 * matMul, no Transpose); everywhere else it moves the axis last. The two must agree, forward and
 * backward: the reference is the transpose path computed on the plain-JS cpu backend.
 */

interface Outcome {
  y: number[];
  dx: number[];
  dKernel: number[];
  dBias: number[];
}

function runDense(): Outcome {
  return tf.tidy(() => {
    const layer = new Dense({ units: 3, axis: 1, activation: 'gelu', biasInitializer: 'he_normal', seed: 9 });
    const x = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 4);
    const dy = tf.randomNormal([2, 3, 5], 0, 1, 'float32', 6);
    layer.build(x.shape);
    const [kernel, bias] = layer.trainableWeights.map((w) => w.read());
    const y = layer.apply(x) as tf.Tensor;
    const grads = tf.grads((input: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => {
      // The same layer with its weights swapped for the differentiated inputs.
      layer.trainableWeights[0]!.write(k);
      layer.trainableWeights[1]!.write(b);
      return layer.apply(input) as tf.Tensor;
    })([x, kernel!, bias!], dy);
    const flat = (t: tf.Tensor) => Array.from(t.dataSync());
    return { y: flat(y), dx: flat(grads[0]!), dKernel: flat(grads[1]!), dBias: flat(grads[2]!) };
  });
}

describe('dense along axis 1 on the native backend', () => {
  it('gives the values and gradients of the transpose path', async (context) => {
    await tf.setBackend('cpu');
    const reference = runDense();
    const loaded = await nativeLoader('tensorflow').load({});
    if (!loaded.ok) context.skip(`the native backend is not set up here (pnpm setup:tensorflow): ${loaded.why}`);
    try {
      expect(tf.getBackend()).toBe('tensorflow');
      const native = runDense();
      for (const key of ['y', 'dx', 'dKernel', 'dBias'] as const) {
        expect(native[key]).toHaveLength(reference[key].length);
        native[key].forEach((v, i) => expect(v).toBeCloseTo(reference[key][i]!, 4));
      }
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
