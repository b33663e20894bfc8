import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  dropoutKeeps,
  erf,
  FUSED_KERNELS,
  hasFusedKernel,
  referenceDropout,
  referenceGeluExact,
  referenceLayerNorm,
  referenceLayerNormGrad,
} from './index.ts';
import { fusedKernelsToRegister, WASM_FUSED_KERNELS } from './wasm.ts';
import { usesSimdKernels } from '../wasm/simd/module.ts';
import { loadWasmBackend, randomValues } from '../wasm/test-helpers.ts';

/**
 * Runs wasm.ts's implementation of a fused kernel (registered or not: see
 * fusedKernelsToRegister), returns its outputs' values and disposes them.
 */
function runFused(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): Float32Array[] {
  const result = WASM_FUSED_KERNELS[name]!({ inputs, attrs, backend: tf.backend() }) as tf.TensorInfo | tf.TensorInfo[];
  const outputs = (Array.isArray(result) ? result : [result]).map((info) => tf.engine().makeTensorFromTensorInfo(info));
  const values = outputs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outputs);
  return values;
}

/** The largest |got - want| / (atol + rtol |want|): at most 1 passes. */
function worstError(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const error = Math.abs(got[i]! - want[i]!) / (atol + rtol * Math.abs(want[i]!));
    if (!(error <= worst)) worst = error; // NaN propagates as a failure
  }
  return worst;
}

describe('fused kernels on wasm (vs the reference implementations)', () => {
  beforeAll(async () => {
    await loadWasmBackend();
    await tf.setBackend('wasm');
  });

  it('registers for wasm exactly those that beat the composite path: all four with SIMD, GELU alone without', () => {
    expect(fusedKernelsToRegister(false)).toEqual([FUSED_KERNELS.geluExact]);
    for (const name of Object.values(FUSED_KERNELS)) expect(hasFusedKernel(name), name).toBe(fusedKernelsToRegister(usesSimdKernels()).includes(name));
  });

  // Tolerance: float32 arithmetic (Eigen's float erf, ~2 ulps of Phi near 1), an error of Phi
  // that x Phi(x) scales by |x|: |error| <= 3e-7 max(1, |x|). Measured on a grid of 400,001
  // points over [-20, 20]: 2.6e-7 for y, 2.4e-7 for dydx (the composite wasm path: 1.2e-7).
  it('GeluExact: y and dydx within float32 accuracy, tails, a dense grid and odd sizes included', () => {
    const grid = Float32Array.from({ length: 40001 }, (_, i) => -20 + i * 1e-3);
    const tails = [-1e4, -40, -13.5, -12, -9, -8, -6, -5.66, -5, -4, -3, -2, -1, -0.5, -1e-3, -1e-30, 0, 1e-30, 1e-3, 0.5, 1, 2, 3, 4, 5, 5.66, 6, 8, 9, 12, 13.5, 40, 1e4];
    for (const values of [Float32Array.from(tails), grid, randomValues(1001, 1, 3), randomValues(128 * 64 * 3 + 5, 2, 1.5)]) {
      const x = tf.tensor1d(values);
      const before = tf.memory().numTensors;
      const [y, dydx] = runFused(FUSED_KERNELS.geluExact, { x });
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      const want = referenceGeluExact(values);
      const bound = Float32Array.from(values, (v) => 3e-7 * Math.max(1, Math.abs(v)));
      for (let i = 0; i < values.length; i++) {
        expect(Math.abs(y![i]! - want.y[i]!), `y at x=${values[i]}`).toBeLessThanOrEqual(bound[i]!);
        expect(Math.abs(dydx![i]! - want.dydx[i]!), `dydx at x=${values[i]}`).toBeLessThanOrEqual(bound[i]!);
      }
    }
  });

  it('GeluExact in JavaScript (the SIMD loop\'s remainder, the fallback without SIMD) within the same bound', () => {
    // One unit at a time: every value goes through the JavaScript loop.
    for (const v of [-1e4, -13.5, -8, -5.66, -4, -2.5, -1, -0.3, 0, 1e-3, 0.7, 1.5, 3, 4, 5.66, 9, 40, ...randomValues(40, 4, 3)]) {
      const x = tf.tensor1d([v]);
      const [y, dydx] = runFused(FUSED_KERNELS.geluExact, { x });
      x.dispose();
      const want = referenceGeluExact([Math.fround(v)]);
      const bound = 3e-7 * Math.max(1, Math.abs(v));
      expect(Math.abs(y![0]! - want.y[0]!), `y at ${v}`).toBeLessThanOrEqual(bound);
      expect(Math.abs(dydx![0]! - want.dydx[0]!), `dydx at ${v}`).toBeLessThanOrEqual(bound);
    }
  });

  it('GeluExact keeps the input shape and gives the gradient of x Phi(x) through one Multiply', () => {
    const x = tf.tensor3d(randomValues(2 * 3 * 5, 3), [2, 3, 5]);
    const [y, dydx] = (WASM_FUSED_KERNELS[FUSED_KERNELS.geluExact]!({ inputs: { x }, attrs: {}, backend: tf.backend() }) as tf.TensorInfo[]).map((info) =>
      tf.engine().makeTensorFromTensorInfo(info),
    );
    expect(y!.shape).toEqual([2, 3, 5]);
    expect(dydx!.shape).toEqual([2, 3, 5]);
    // Central differences of x Phi(x) in float64: an independent check of the derivative.
    const h = 1e-5;
    const gelu = (v: number) => 0.5 * v * (1 + erf(v * Math.SQRT1_2));
    const values = x.dataSync();
    const slope = dydx!.dataSync();
    values.forEach((v, i) => {
      const numeric = (gelu(v + h) - gelu(v - h)) / (2 * h);
      expect(slope[i]).toBeCloseTo(numeric, 6);
    });
    tf.dispose([x, y!, dydx!]);
  });

  it('Dropout: keeps exactly the units dropoutKeeps keeps, scales them bit for bit (-0 included), at rates 0, 0.2, 0.5, 0.9', () => {
    for (const rate of [0, 0.2, 0.5, 0.9]) {
      for (const [size, seed] of [[1, 5], [7, -1], [1001, 123456789], [1006, 3], [128 * 64 + 1, 2 ** 31 - 1], [4096, 0]] as const) {
        const values = randomValues(size, seed + 7);
        const x = tf.tensor1d(values);
        const [y] = runFused(FUSED_KERNELS.dropout, { x }, { rate, seed });
        x.dispose();
        const keeps = dropoutKeeps(size, rate, seed);
        const want = referenceDropout(values, rate, seed);
        let kept = 0;
        for (let i = 0; i < size; i++) {
          if (!Object.is(y![i], want[i])) expect.fail(`rate ${rate}, size ${size}, seed ${seed}: unit ${i} is ${y![i]}, want ${want[i]}`);
          if (keeps[i]) kept++;
          expect(y![i] !== 0).toBe(keeps[i] === 1);
        }
        if (size >= 4096) expect(Math.abs(kept / size - (1 - rate))).toBeLessThan(0.03);
      }
    }
  });

  it('Dropout applied twice with the same attrs drops the same units (its own gradient)', () => {
    const x = tf.ones([3, 5, 7]);
    const [first] = runFused(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 99 });
    const [second] = runFused(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 99 });
    const [other] = runFused(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 100 });
    x.dispose();
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    expect(new Set(first)).toEqual(new Set([0, 2]));
  });

  // Tolerance: float32 arithmetic (the SIMD kernels; the JavaScript loops, for rows whose length
  // is not a multiple of 4, are float64): every value within 4e-7 of the largest |value| of its
  // output, ~3 float32 ulps of it. Measured: <= 2e-7 for y, mean, rstd, dx, dgamma, dbeta.
  it('LayerNorm and LayerNormGrad match the reference: SIMD and JavaScript paths, several row blocks, an offset mean, two epsilons', () => {
    const largest = (values: ArrayLike<number>) => Array.from(values).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const close = (got: ArrayLike<number>, want: ArrayLike<number>) => expect(worstError(got, want, 4e-7 * largest(want) + 1e-30, 0)).toBeLessThanOrEqual(1);
    for (const [rows, columns, epsilon] of [[1, 1, 1e-3], [11, 37, 1e-6], [130, 64, 1e-6], [300, 256, 1e-3], [3, 4, 1e-6]] as const) {
      const xv = randomValues(rows * columns, rows + columns, 2, 3);
      const dyv = randomValues(rows * columns, 5 * rows);
      const gv = randomValues(columns, 11, 0.5, 1);
      const bv = randomValues(columns, 12);
      const [x, dy, gamma, beta] = [tf.tensor2d(xv, [rows, columns]), tf.tensor2d(dyv, [rows, columns]), tf.tensor1d(gv), tf.tensor1d(bv)];
      const before = tf.memory().numTensors;
      const [y, mean, rstd] = runFused(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon });
      const want = referenceLayerNorm(xv, gv, bv, epsilon);
      close(y!, want.y);
      close(mean!, want.mean);
      close(rstd!, want.rstd);
      const [meanT, rstdT] = [tf.tensor1d(mean!), tf.tensor1d(rstd!)];
      const [dx, dgamma, dbeta] = runFused(FUSED_KERNELS.layerNormGrad, { dy, x, mean: meanT, rstd: rstdT, gamma });
      const wantGrad = referenceLayerNormGrad(dyv, xv, mean!, rstd!, gv);
      close(dx!, wantGrad.dx);
      close(dgamma!, wantGrad.dgamma);
      close(dbeta!, wantGrad.dbeta);
      tf.dispose([meanT, rstdT]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, dy, gamma, beta]);
    }
  });

  it('LayerNorm normalises each row: mean 0 and variance 1 before gamma and beta', () => {
    const x = tf.tensor2d([[1, 2, 3, 4], [10, 10, 10, 14]]);
    const [gamma, beta] = [tf.ones([4]), tf.zeros([4])];
    const [y, mean, rstd] = runFused(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: 0 });
    tf.dispose([x, gamma, beta]);
    expect(Array.from(mean!)).toEqual([2.5, 11]);
    // Row 1: variance 1.25; row 2: variance 3.
    expect(rstd![0]).toBeCloseTo(1 / Math.sqrt(1.25), 6);
    expect(rstd![1]).toBeCloseTo(1 / Math.sqrt(3), 6);
    const row2 = Array.from(y!.subarray(4));
    [-1, -1, -1, 3].forEach((d, i) => expect(row2[i]).toBeCloseTo(d / Math.sqrt(3), 6));
  });
});
