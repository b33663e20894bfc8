import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { FUSED_KERNELS, hasFusedKernel, nativeLoader } from '@tessera/core';
import { BatchNorm, batchNormTraining } from './batch_norm.ts';

/*
 * On the native backend a training batch norm runs TensorFlow's FusedBatchNormV3 and its
 * gradient (the fused kernels of backend/kernels/batch_norm). They must give what the composite
 * path (column means, hand-written backward; reached by unregistering the kernel for the call)
 * gives on the same backend: y, the batch statistics, the gradients of x, gamma and beta; and
 * the layer must move its moving statistics by them.
 */

afterAll(async () => {
  await tf.setBackend('cpu');
});

function composite<T>(fn: () => T): T {
  const saved = tf.getKernel(FUSED_KERNELS.batchNorm, 'tensorflow')!;
  tf.unregisterKernel(FUSED_KERNELS.batchNorm, 'tensorflow');
  try {
    expect(hasFusedKernel(FUSED_KERNELS.batchNorm)).toBe(false);
    return fn();
  } finally {
    tf.registerKernel(saved);
  }
}

function relDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / Math.max(1e-12, tf.max(tf.abs(b)).dataSync()[0]!));
}

describe('batch_norm on the native backend', () => {
  it('fused kernels give the composite path’s values, statistics and gradients', async (context) => {
    const loaded = await nativeLoader('tensorflow').load({});
    if (!loaded.ok) context.skip(`the native backend is not set up here (pnpm setup:tensorflow): ${loaded.why}`);
    expect(hasFusedKernel(FUSED_KERNELS.batchNorm)).toBe(true);
    for (const shape of [[8, 6, 6, 16], [40, 12]]) {
      const channels = shape[shape.length - 1]!;
      tf.tidy(() => {
        const x = tf.randomNormal(shape, 2, 3, 'float32', 1);
        const gamma = tf.randomNormal([channels], 1, 0.5, 'float32', 2) as tf.Tensor1D;
        const beta = tf.randomNormal([channels], 0, 0.5, 'float32', 3) as tf.Tensor1D;
        const probe = tf.randomNormal(shape, 0, 1, 'float32', 4);
        const run = () => {
          const { y, mean, variance } = batchNormTraining(x, gamma, beta, 1e-3);
          const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3).y, probe)))([x, gamma, beta]);
          return [y, mean, variance, ...grads];
        };
        const want = composite(run);
        run().forEach((got, i) => expect(relDiff(got, want[i]!), `output ${i}`).toBeLessThan(i < 3 ? 1e-5 : 1e-4));

        // The layer: momentum 0.5 from zeros and ones moves to batch / 2 and (1 + batch) / 2.
        const layer = new BatchNorm({ momentum: 0.5, epsilon: 1e-3 });
        layer.build(shape);
        layer.setWeights([gamma, beta, tf.zeros([channels]), tf.ones([channels])]);
        expect(relDiff(layer.apply(x, { training: true }) as tf.Tensor, want[0]!)).toBeLessThan(1e-5);
        const [movingMean, movingVariance] = layer.getWeights().slice(2);
        expect(relDiff(movingMean!, tf.mul(want[1]!, 0.5))).toBeLessThan(1e-5);
        expect(relDiff(movingVariance!, tf.mul(tf.add(want[2]!, 1), 0.5))).toBeLessThan(1e-5);
        // A training step's forward and backward leave no tensor behind.
        const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const settled = tf.memory().numTensors;
        tf.tidy(() => {
          tf.variableGrads(() => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, probe)) as tf.Scalar, variables);
        });
        expect(tf.memory().numTensors).toBe(settled);
      });
    }
  });
});
