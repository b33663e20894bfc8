import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LayerNorm, layerNorm } from './layer_norm.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('layer_norm', () => {
  it('matches a hand computation with epsilon 1e-6', () => {
    // Row [1, 2, 3, 4]: mean 2.5, variance 1.25.
    const y = new LayerNorm({ epsilon: 1e-6 }).apply(tf.tensor3d([[[1, 2, 3, 4]]])) as tf.Tensor;
    const std = Math.sqrt(1.25 + 1e-6);
    const want = [1, 2, 3, 4].map((v) => (v - 2.5) / std);
    (y.arraySync() as number[][][])[0]![0]!.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
  });

  it('applies gamma and beta by broadcasting and honours epsilon (not the tfjs default)', () => {
    const x = tf.tensor2d([[0, 0.001]]);
    const gamma = tf.tensor1d([2, 3]);
    const beta = tf.tensor1d([10, 20]);
    // mean 0.0005, variance 2.5e-7: epsilon 1e-3 dominates, epsilon 1e-9 does not.
    const loose = layerNorm(x, gamma, beta, 1, 1e-3).arraySync() as number[][];
    const tight = layerNorm(x, gamma, beta, 1, 1e-9).arraySync() as number[][];
    const std = (eps: number) => Math.sqrt(2.5e-7 + eps);
    expect(loose[0]![0]).toBeCloseTo(10 + (2 * -0.0005) / std(1e-3), 5);
    expect(tight[0]![1]).toBeCloseTo(20 + (3 * 0.0005) / std(1e-9), 3);
  });

  it('has a hand-written gradient equal to autodiff of the plain formula', () => {
    const x = tf.randomNormal([3, 4, 6], 0, 2, 'float32', 1);
    const gamma = tf.randomNormal([6], 1, 0.3, 'float32', 2);
    const beta = tf.randomNormal([6], 0, 0.3, 'float32', 3);
    const probe = tf.randomNormal([3, 4, 6], 0, 1, 'float32', 4);
    const plain = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const mean = tf.mean(a, -1, true);
      const variance = tf.mean(tf.square(tf.sub(a, mean)), -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(a, mean), tf.sqrt(tf.add(variance, 1e-6))), g), b);
    };
    const loss = (f: typeof plain) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b), probe));
    const custom = tf.grads(loss((a, g, b) => layerNorm(a, g, b, 2, 1e-6)))([x, gamma, beta]);
    const reference = tf.grads(loss(plain))([x, gamma, beta]);
    custom.forEach((grad, i) => {
      const diff = tf.max(tf.abs(tf.sub(grad, reference[i]!))).dataSync()[0]!;
      expect(diff).toBeLessThan(1e-4);
    });
  });

  it('normalises a non-last axis with the same gradient rule', () => {
    const x = tf.randomNormal([2, 5, 3], 0, 1, 'float32', 6);
    const layer = new LayerNorm({ axis: 1, epsilon: 1e-6 });
    const y = layer.apply(x) as tf.Tensor;
    const moments = tf.moments(y, 1);
    expect(tf.max(tf.abs(moments.mean)).dataSync()[0]).toBeLessThan(1e-5);
    expect(tf.max(tf.abs(tf.sub(moments.variance, 1))).dataSync()[0]).toBeLessThan(1e-4);
    expect(layer.trainableWeights.map((w) => w.shape)).toEqual([[5], [5]]);
  });
});
