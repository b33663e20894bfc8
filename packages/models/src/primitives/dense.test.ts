import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Dense } from './dense.ts';
import { activate } from './activation.ts';
import { matMul2d, matMulByConstant } from './common.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('dense', () => {
  it('along axis 1 equals transpose -> dense -> transpose (token mixing), bias ones', () => {
    const x = tf.randomNormal([2, 4, 3], 0, 1, 'float32', 1);
    const layer = new Dense({ units: 5, axis: 1, biasInitializer: 'ones', seed: 3 });
    const y = layer.apply(x) as tf.Tensor;
    const [kernel, bias] = layer.getWeights() as [tf.Tensor2D, tf.Tensor1D];
    expect(Array.from(bias.dataSync())).toEqual([1, 1, 1, 1, 1]);
    const xs = x.arraySync() as number[][][];
    const k = kernel.arraySync();
    const got = y.arraySync() as number[][][];
    expect(y.shape).toEqual([2, 5, 3]);
    for (let b = 0; b < 2; b++)
      for (let u = 0; u < 5; u++)
        for (let c = 0; c < 3; c++) {
          let sum = 1;
          for (let p = 0; p < 4; p++) sum += xs[b]![p]![c]! * k[p]![u]!;
          expect(got[b]![u]![c]).toBeCloseTo(sum, 5);
        }
  });

  it('uses a seeded glorot-uniform kernel: same seed, same weights; bounded by sqrt(6/(in+out))', () => {
    const weights = (seed: number) => {
      const layer = new Dense({ units: 8, seed });
      layer.apply(tf.zeros([1, 16]));
      return Array.from(layer.getWeights()[0]!.dataSync());
    };
    expect(weights(5)).toEqual(weights(5));
    expect(weights(5)).not.toEqual(weights(6));
    const limit = Math.sqrt(6 / (16 + 8));
    expect(Math.max(...weights(5).map(Math.abs))).toBeLessThanOrEqual(limit);
  });
});

describe('activations', () => {
  it('gelu is the exact erf form, like Keras gelu(approximate=False)', () => {
    // x * Phi(x): Phi(1) = 0.8413447460685429, Phi(-1) = 0.15865525393145707.
    const y = Array.from(activate('gelu', tf.tensor1d([1, -1, 0, 3])).dataSync());
    expect(y[0]).toBeCloseTo(0.8413447460685429, 6);
    expect(y[1]).toBeCloseTo(-0.15865525393145707, 6);
    expect(y[2]).toBe(0);
    expect(y[3]).toBeCloseTo(3 * 0.9986501019683699, 5);
    // The tanh approximation differs in the 4th decimal at x = 1.
    expect(activate('gelu_tanh', tf.scalar(1)).dataSync()[0]).toBeCloseTo(0.8411919906082768, 6);
  });

  it("gelu's hand-written gradient is Phi(x) + x phi(x), as autodiff of the formula gives", () => {
    // Golden values from Python's math.erf: 0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi).
    const x = tf.tensor1d([1, -1, 0, 3, -2, 0.5]);
    const golden = [1.0833154705876864, -0.08331547058768629, 0.5, 1.011945647204184, -0.08523180107819692, 0.8674951246561629];
    const upstream = tf.tensor1d([1, 1, 1, 1, 1, 1]);
    const grad = tf.grad((t: tf.Tensor) => activate('gelu', t))(x, upstream);
    Array.from(grad.dataSync()).forEach((g, i) => expect(g).toBeCloseTo(golden[i]!, 6));
    // An upstream gradient scales it; autodiff through the erf formula agrees element by element.
    const dy = tf.tensor1d([0.3, -2, 1.5, 0.7, 4, -1]);
    const formula = (t: tf.Tensor) => tf.mul(tf.mul(t, 0.5), tf.add(tf.erf(tf.mul(t, Math.SQRT1_2)), 1));
    const expected = Array.from(tf.grad(formula)(x, dy).dataSync());
    Array.from(tf.grad((t: tf.Tensor) => activate('gelu', t))(x, dy).dataSync()).forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 5));
  });
});

describe('matMul2d and matMulByConstant (plain 2-D matMuls in the backward pass too)', () => {
  it('give the same values and gradients as tf.matMul', () => {
    const a = tf.randomNormal([5, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
    const b = tf.randomNormal([3, 4], 0, 1, 'float32', 2) as tf.Tensor2D;
    const probe = tf.randomNormal([5, 4], 0, 1, 'float32', 3);
    const loss = (f: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor) => (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(f(x as tf.Tensor2D, y as tf.Tensor2D), probe));
    const close = (p: tf.Tensor, q: tf.Tensor) => expect(tf.max(tf.abs(tf.sub(p, q))).dataSync()[0]).toBeLessThan(1e-5);
    close(matMul2d(a, b), tf.matMul(a, b));
    const [da, db] = tf.grads(loss(matMul2d))([a, b]);
    const [wantA, wantB] = tf.grads(loss((x, y) => tf.matMul(x, y)))([a, b]);
    close(da!, wantA!);
    close(db!, wantB!);
    // The constant and its transpose live outside the gradient's scope, as a layer keeps them.
    const bT = tf.transpose(b) as tf.Tensor2D;
    const byConstant = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(matMulByConstant(x as tf.Tensor2D, b, bT), probe)))(a);
    close(byConstant, wantA!);
  });
});
