import { afterEach, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { AdamW, Sgd, clipByGlobalNorm, clipByNorm, type NamedVariable } from './optimizers.ts';

// Golden values: the Keras 3 update rules evaluated in float64 by a separate Python script
// (decay var -= lr*wd*var, then m += (g-m)(1-b1), v += (g^2-v)(1-b2),
// var -= m * lr*sqrt(1-b2^t)/(1-b1^t) / (sqrt(v)+eps)).
const GRADS = [
  [0.5, 0.1],
  [-0.3, 0.2],
];

function named(values: number[], name = 'dense/kernel'): NamedVariable {
  return { name, variable: tf.variable(tf.tensor1d(values)) };
}

function step(opt: { applyGradients: AdamW['applyGradients'] }, v: NamedVariable, grad: number[], lr: number) {
  const g = tf.tensor1d(grad);
  opt.applyGradients([v], [g], lr);
  g.dispose();
}

afterEach(() => tf.disposeVariables());

describe('AdamW', () => {
  it('matches a hand-computed Keras 3 update over two steps', () => {
    const opt = new AdamW({ learning_rate: 0.1, weight_decay: 0.1, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 });
    const v = named([1.0, -2.0]);
    step(opt, v, GRADS[0]!, 0.1);
    expect(Array.from(v.variable.dataSync())).toEqual([expect.closeTo(0.890000632451532, 6), expect.closeTo(-2.079996837822337, 6)]);
    step(opt, v, GRADS[1]!, 0.1);
    expect(Array.from(v.variable.dataSync())).toEqual([expect.closeTo(0.8619509264963165, 6), expect.closeTo(-2.1557137069355687, 6)]);
    const state = opt.getState();
    expect(state.iterations).toBe(2);
    expect(Array.from(state.slots.get('dense/kernel/m')!.dataSync())).toEqual([expect.closeTo(0.015, 7), expect.closeTo(0.029, 7)]);
    expect(Array.from(state.slots.get('dense/kernel/v')!.dataSync())).toEqual([expect.closeTo(3.3975e-4, 9), expect.closeTo(4.999e-5, 9)]);
    opt.dispose();
  });

  it('decays every weight by default and skips excluded names', () => {
    // With a zero gradient Adam moves nothing, so only the decay acts: 1 - lr*wd = 0.99.
    const opt = new AdamW({ learning_rate: 0.1, weight_decay: 0.1, exclude_from_weight_decay: ['norm'] });
    const bias = named([2], 'dense/bias');
    const gamma = named([2], 'layer_norm/gamma');
    const zero = [tf.zeros([1]), tf.zeros([1])];
    opt.applyGradients([bias, gamma], zero, 0.1);
    expect(bias.variable.dataSync()[0]).toBeCloseTo(1.98, 6);
    expect(gamma.variable.dataSync()[0]).toBe(2);
    zero.forEach((z) => z.dispose());
    opt.dispose();
  });

  it('restores its state into a fresh optimizer and continues identically', () => {
    const a = new AdamW({ learning_rate: 0.1, weight_decay: 0.1 });
    const va = named([1.0, -2.0]);
    step(a, va, GRADS[0]!, 0.1);
    const b = new AdamW({ learning_rate: 0.1, weight_decay: 0.1 });
    const vb = named(Array.from(va.variable.dataSync()));
    b.setState(a.getState());
    step(a, va, GRADS[1]!, 0.1);
    step(b, vb, GRADS[1]!, 0.1);
    expect(Array.from(vb.variable.dataSync())).toEqual(Array.from(va.variable.dataSync()));
    expect(b.iterations).toBe(2);
    a.dispose();
    b.dispose();
  });

  it('leaks no tensors per step', () => {
    const opt = new AdamW({});
    const v = named([1, 2, 3]);
    step(opt, v, [1, 1, 1], 0.01);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step(opt, v, [1, 1, 1], 0.01);
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
  });
});

describe('SGD', () => {
  it('applies momentum and Nesterov momentum like Keras', () => {
    for (const [nesterov, expected] of [
      [false, [0.935, -2.039]],
      [true, [0.9215, -2.0651]],
    ] as const) {
      const opt = new Sgd({ learning_rate: 0.1, momentum: 0.9, nesterov });
      const v = named([1.0, -2.0]);
      for (const g of GRADS) step(opt, v, g, 0.1);
      expect(Array.from(v.variable.dataSync())).toEqual([expect.closeTo(expected[0], 6), expect.closeTo(expected[1], 6)]);
      opt.dispose();
    }
  });
});

describe('gradient clipping', () => {
  it('clips each gradient to its own norm, leaving small ones alone', () => {
    const big = tf.tensor1d([3, 4]); // norm 5
    const small = tf.tensor1d([0.3, 0.4]);
    expect(Array.from(clipByNorm(big, 1).dataSync())).toEqual([expect.closeTo(0.6, 6), expect.closeTo(0.8, 6)]);
    expect(Array.from(clipByNorm(small, 1).dataSync())).toEqual([expect.closeTo(0.3, 6), expect.closeTo(0.4, 6)]);
    expect(Array.from(clipByNorm(tf.zeros([2]), 1).dataSync())).toEqual([0, 0]);
  });

  it('scales all gradients by the global norm', () => {
    // Joint norm of [3, 4] and [12] is 13.
    const out = clipByGlobalNorm([tf.tensor1d([3, 4]), tf.tensor1d([12])], 0.25);
    expect([...out[0]!.dataSync(), ...out[1]!.dataSync()]).toEqual([
      expect.closeTo(0.0576923, 6),
      expect.closeTo(0.0769231, 6),
      expect.closeTo(0.2307692, 6),
    ]);
  });
});
