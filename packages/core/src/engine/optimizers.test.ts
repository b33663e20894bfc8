import { afterEach, describe, expect, it } from 'vitest';
import { wasmLoader } from '../backend/loaders.ts';
import * as tf from '@tensorflow/tfjs';
import { AdamW, Sgd, clipByGlobalNorm, clipByNorm, type NamedVariable } from './optimizers.ts';

/** Keras 3 AdamW for one array, in float64: the independent reference for the flat update. */
function kerasAdamW(values: number[], grads: number[][], lr: number, wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-7) {
  const w = values.slice();
  const m = w.map(() => 0);
  const v = w.map(() => 0);
  grads.forEach((g, step) => {
    const t = step + 1;
    const alpha = (lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t);
    for (let i = 0; i < w.length; i++) {
      w[i] = w[i]! - w[i]! * lr * wd;
      m[i] = m[i]! + (g[i]! - m[i]!) * (1 - b1);
      v[i] = v[i]! + (g[i]! ** 2 - v[i]!) * (1 - b2);
      w[i] = w[i]! - (m[i]! * alpha) / (Math.sqrt(v[i]!) + eps);
    }
  });
  return { w, m, v };
}

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

describe('AdamW over many variables at once', () => {
  // Three variables of different shapes, one excluded from decay, stepped together.
  const shapes = [[2, 3], [3], [2, 2, 2]];
  const names = ['dense/kernel', 'dense/bias', 'layer_norm/gamma'];
  const init = shapes.map((shape, k) => Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(k * 10 + i + 1)));
  const grads = [0, 1, 2].map((step) => init.map((values, k) => values.map((_, i) => Math.cos(step * 7 + k * 3 + i) / 4)));
  const make = () => names.map((name, k) => ({ name, variable: tf.variable(tf.tensor(init[k]!, shapes[k]!)) }));
  const stepAll = (opt: AdamW, vars: NamedVariable[], step: number) => {
    const g = grads[step]!.map((values, k) => tf.tensor(values, shapes[k]!));
    opt.applyGradients(vars, g, 0.05);
    g.forEach((t) => t.dispose());
  };

  const expectKerasUpdate = () => {
    const opt = new AdamW({ learning_rate: 0.05, weight_decay: 0.1, exclude_from_weight_decay: ['norm'] });
    const vars = make();
    for (let step = 0; step < 3; step++) stepAll(opt, vars, step);
    const state = opt.getState();
    vars.forEach(({ name, variable }, k) => {
      const expected = kerasAdamW(init[k]!, grads.map((g) => g[k]!), 0.05, name.includes('norm') ? 0 : 0.1);
      expect(variable.shape).toEqual(shapes[k]);
      expect(Array.from(variable.dataSync())).toEqual(expected.w.map((x) => expect.closeTo(x, 6)));
      expect(state.slots.get(`${name}/m`)!.shape).toEqual(shapes[k]);
      expect(Array.from(state.slots.get(`${name}/m`)!.dataSync())).toEqual(expected.m.map((x) => expect.closeTo(x, 7)));
      expect(Array.from(state.slots.get(`${name}/v`)!.dataSync())).toEqual(expected.v.map((x) => expect.closeTo(x, 9)));
    });
    opt.dispose();
  };

  it('updates every variable as Keras would update it alone, slots keyed per variable', expectKerasUpdate);

  it('does the same on wasm, where each variable is updated on its own', async () => {
    const previous = tf.getBackend(); // the loader makes wasm current
    const loaded = await wasmLoader.load({});
    if (!loaded.ok) throw new Error(loaded.why);
    await tf.setBackend('wasm');
    try {
      expectKerasUpdate();
    } finally {
      tf.disposeVariables();
      await tf.setBackend(previous);
    }
  });

  it('runs a fixed number of kernels per step, however many variables there are', async () => {
    const countKernels = async (count: number) => {
      const opt = new AdamW({ learning_rate: 0.01 });
      const vars = Array.from({ length: count }, (_, i) => named([1, 2, 3], `v${i}/bias`));
      const g = vars.map(() => tf.ones([3]));
      opt.applyGradients(vars, g, 0.01);
      const profile = await tf.profile(() => opt.applyGradients(vars, g, 0.01));
      g.forEach((t) => t.dispose());
      opt.dispose();
      return profile.kernels.length;
    };
    const few = await countKernels(2);
    // Per variable the update would take 14 kernels; flat, it is 2 concats + 14 element-wise + 1 split.
    expect(few).toBe(17);
    expect(await countKernels(40)).toBe(few);
  });

  it('resumes into an optimizer that meets the variables in another order, then repacks', () => {
    const a = new AdamW({ learning_rate: 0.05, weight_decay: 0.1 });
    const va = make();
    stepAll(a, va, 0);
    const b = new AdamW({ learning_rate: 0.05, weight_decay: 0.1 });
    const vb = make();
    vb.forEach((v, k) => v.variable.assign(va[k]!.variable));
    b.setState(a.getState());
    // b packs its slots for the reversed order, then again for the original one.
    stepAll(a, va, 1);
    const g = grads[1]!.map((values, k) => tf.tensor(values, shapes[k]!));
    b.applyGradients([...vb].reverse(), [...g].reverse(), 0.05);
    g.forEach((t) => t.dispose());
    stepAll(a, va, 2);
    stepAll(b, vb, 2);
    const sa = a.getState();
    const sb = b.getState();
    expect(sb.iterations).toBe(3);
    expect([...sb.slots.keys()].sort()).toEqual([...sa.slots.keys()].sort());
    for (const [key, slot] of sa.slots) expect(Array.from(sb.slots.get(key)!.dataSync())).toEqual(Array.from(slot.dataSync()));
    vb.forEach((v, k) => expect(Array.from(v.variable.dataSync())).toEqual(Array.from(va[k]!.variable.dataSync())));
    a.dispose();
    b.dispose();
  });

  it('says which slot does not fit its variable', () => {
    const opt = new AdamW({});
    opt.setState({ iterations: 1, slots: new Map([['dense/kernel/m', tf.zeros([5])]]) });
    const v = named([1, 2]);
    expect(() => step(opt, v, [1, 1], 0.1)).toThrow('optimizer slot dense/kernel/m has shape [5], the variable [2]');
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
