import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { FUSED_KERNELS, hasFusedKernel, nativeLoader } from '@tessera/core';
import { BatchNorm, trainingNormalize } from './batch_norm.ts';

/*
 * On the native backend a training batch norm runs TensorFlow's FusedBatchNormV3 and its
 * gradient (the fused kernels of backend/fused.ts). They must give what the composite path
 * (trainingNormalize: column means, hand-written backward) gives on the same backend: y, the
 * batch statistics the moving ones move towards, and the gradients of x, gamma and beta.
 */

afterAll(async () => {
  await tf.setBackend('cpu');
});

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
        const probe = tf.randomNormal(shape, 0, 1, 'float32', 4);
        const layer = new BatchNorm({ momentum: 0.5, epsilon: 1e-3 });
        layer.build(shape);
        const gamma = tf.randomNormal([channels], 1, 0.5, 'float32', 2);
        const beta = tf.randomNormal([channels], 0, 0.5, 'float32', 3);
        layer.setWeights([gamma, beta, tf.zeros([channels]), tf.ones([channels])]);
        const composite = (input: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(trainingNormalize(input.reshape([-1, channels]) as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3).y.reshape(shape), probe));
        const fused = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, probe)) as tf.Scalar;
        const y = layer.apply(x, { training: true }) as tf.Tensor;
        const want = trainingNormalize(x.reshape([-1, channels]) as tf.Tensor2D, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-3);
        expect(relDiff(y, want.y.reshape(shape))).toBeLessThan(1e-5);
        // momentum 0.5 from zeros and ones: moving = batch / 2 and (1 + batch) / 2.
        const [movingMean, movingVariance] = layer.getWeights().slice(2);
        expect(relDiff(movingMean!, tf.mul(want.mean, 0.5))).toBeLessThan(1e-5);
        expect(relDiff(movingVariance!, tf.mul(tf.add(want.variance, 1), 0.5))).toBeLessThan(1e-5);
        const [dx, dGamma, dBeta] = tf.grads(composite)([x, gamma, beta]);
        expect(relDiff(tf.grad(fused)(x), dx!)).toBeLessThan(1e-4);
        const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
        const { grads } = tf.variableGrads(() => fused(x), variables);
        expect(relDiff(grads[variables[0]!.name]!, dGamma!)).toBeLessThan(1e-4);
        expect(relDiff(grads[variables[1]!.name]!, dBeta!)).toBeLessThan(1e-4);
        // A training step's forward and backward leave no tensor behind.
        const settled = tf.memory().numTensors;
        tf.tidy(() => {
          tf.variableGrads(() => fused(x), variables);
        });
        expect(tf.memory().numTensors).toBe(settled);
      });
    }
  });
});
