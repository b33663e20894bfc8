import * as tf from '@tensorflow/tfjs';
import { childSeed, FUSED_KERNELS, dropoutKeeps, hasFusedKernel, registerFusedKernels } from '@tessera/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { geluExact } from './activation.ts';
import { Dropout } from './dropout.ts';
import { batchNormTraining } from './batch_norm.ts';
import { addBias } from './common.ts';
import { layerNorm } from './layer_norm.ts';

/*
 * The primitives that have fused kernels (backend/kernels/) take them where the backend has them
 * and fall back to composite TF.js ops elsewhere: both paths must give the same values and
 * gradients. The cpu backend has the fused kernels (the reference implementations), so the
 * composite path is reached by unregistering them for the duration of a call.
 */

beforeAll(async () => {
  await tf.setBackend('cpu');
  registerFusedKernels('cpu');
});

function composite<T>(fn: () => T): T {
  const saved = Object.values(FUSED_KERNELS).map((name) => tf.getKernel(name, 'cpu')!);
  saved.forEach((config) => tf.unregisterKernel(config.kernelName, 'cpu'));
  const restore = () => saved.forEach((config) => tf.registerKernel(config));
  let result: T;
  try {
    expect(hasFusedKernel(FUSED_KERNELS.geluExact)).toBe(false);
    result = fn();
  } catch (error) {
    restore();
    throw error;
  }
  // An asynchronous fn (a profile) keeps the composite path until it settles.
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

/** The value and the gradients (w.r.t. every argument) of sum(f(args) * w). */
function valueAndGrads(f: (...args: tf.Tensor[]) => tf.Tensor, args: tf.Tensor[], w: tf.Tensor): number[][] {
  return tf.tidy(() => {
    const g = tf.grads((...xs: tf.Tensor[]) => tf.mul(f(...xs), w))(args);
    return [Array.from(f(...args).dataSync()), ...g.map((t) => Array.from(t.dataSync()))];
  });
}

/** The kernels one call runs (forward and backward), by name. */
async function kernelsOf(f: () => unknown): Promise<string[]> {
  return (await tf.profile(() => void f())).kernelNames;
}

function expectClose(a: number[][], b: number[][], tolerance: number): void {
  expect(a.length).toBe(b.length);
  a.forEach((values, i) => values.forEach((v, j) => expect(Math.abs(v - b[i]![j]!)).toBeLessThan(tolerance * (1 + Math.abs(b[i]![j]!)))));
}

describe('fused and composite paths agree', () => {
  it('exact GELU: values and gradient, tails included', async () => {
    const x = tf.tensor1d([-9, -5, -3, -1.2, -0.3, 0, 0.4, 1, 2.5, 6, 11]);
    const w = tf.randomNormal([11], 0, 1, 'float32', 3);
    expect(hasFusedKernel(FUSED_KERNELS.geluExact)).toBe(true);
    expectClose(valueAndGrads(geluExact, [x], w), composite(() => valueAndGrads(geluExact, [x], w)), 2e-6);
    // Each path is the one it claims to be: the fused kernel, else Erf and friends.
    expect(await kernelsOf(() => valueAndGrads(geluExact, [x], w))).toContain(FUSED_KERNELS.geluExact);
    const fallback = await composite(() => kernelsOf(() => valueAndGrads(geluExact, [x], w)));
    expect(fallback).toContain('Erf');
    expect(fallback).not.toContain(FUSED_KERNELS.geluExact);
  });

  it('layer norm over the last axis: values and the gradients of x, gamma and beta', async () => {
    const x = tf.randomNormal([2, 3, 16], 0.5, 2, 'float32', 1);
    const gamma = tf.randomNormal([16], 1, 0.3, 'float32', 2);
    const beta = tf.randomNormal([16], 0, 0.3, 'float32', 3);
    const w = tf.randomNormal([2, 3, 16], 0, 1, 'float32', 4);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNorm(a, g, b, 2, 1e-6);
    expectClose(valueAndGrads(f, [x, gamma, beta], w), composite(() => valueAndGrads(f, [x, gamma, beta], w)), 1e-5);
    const fused = await kernelsOf(() => valueAndGrads(f, [x, gamma, beta], w));
    expect(fused).toEqual(expect.arrayContaining([FUSED_KERNELS.layerNorm, FUSED_KERNELS.layerNormGrad]));
    expect(fused).not.toContain('Rsqrt');
  });

  it('dropout: the same mask from the same seed, applied forward and backward', async () => {
    const layer = new Dropout({ rate: 0.3, seed: 5 });
    const x = tf.randomNormal([4, 33], 0, 1, 'float32', 6);
    const run = () => {
      const original = Math.random;
      Math.random = () => 0.25;
      try {
        const y = layer.apply(x, { training: true }) as tf.Tensor;
        const g = tf.grad((t: tf.Tensor) => layer.apply(t, { training: true }) as tf.Tensor)(x);
        return [Array.from(y.dataSync()), Array.from(g.dataSync())];
      } finally {
        Math.random = original;
      }
    };
    const fused = run();
    expect(composite(run)).toEqual(fused);
    expect(await kernelsOf(run)).toContain(FUSED_KERNELS.dropout);
    // The gradient is the mask: dropoutKeeps' pattern for the seed the layer derived from its own
    // seed and the Math.random draw, scaled by float32(1 / 0.7).
    const seed = childSeed(5, Math.floor(0.25 * 2147483647));
    expect(fused[1]!).toEqual(Array.from(dropoutKeeps(132, 0.3, seed), (keep) => (keep ? Math.fround(1 / 0.7) : 0)));
  });

  it('batch norm in training: values, batch statistics and the gradients of x, gamma and beta', async () => {
    const x = tf.randomNormal([3, 4, 5, 8], 1, 2, 'float32', 11);
    const gamma = tf.randomNormal([8], 1, 0.3, 'float32', 12);
    const beta = tf.randomNormal([8], 0, 0.3, 'float32', 13);
    const w = tf.randomNormal([3, 4, 5, 8], 0, 1, 'float32', 14);
    const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3).y;
    const stats = () => tf.tidy(() => Object.values(batchNormTraining(x, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-3)).slice(1).map((t) => Array.from(t.dataSync())));
    expectClose(stats(), composite(stats), 1e-5);
    expectClose(valueAndGrads(f, [x, gamma, beta], w), composite(() => valueAndGrads(f, [x, gamma, beta], w)), 1e-4);
    expect(await kernelsOf(() => valueAndGrads(f, [x, gamma, beta], w))).toEqual(expect.arrayContaining([FUSED_KERNELS.batchNorm, FUSED_KERNELS.batchNormGrad]));
  });

  it('bias add: values and the gradients of x and the bias', async () => {
    const x = tf.randomNormal([3, 4, 8], 0, 2, 'float32', 15);
    const bias = tf.randomNormal([8], 0, 1, 'float32', 16);
    const w = tf.randomNormal([3, 4, 8], 0, 1, 'float32', 17);
    expectClose(valueAndGrads(addBias, [x, bias], w), composite(() => valueAndGrads(addBias, [x, bias], w)), 1e-5);
    expect(await kernelsOf(() => valueAndGrads(addBias, [x, bias], w))).toEqual(expect.arrayContaining([FUSED_KERNELS.biasAdd, FUSED_KERNELS.biasAddGrad]));
  });
});
