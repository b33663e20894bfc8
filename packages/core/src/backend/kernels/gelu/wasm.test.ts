import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUSED_KERNELS, erf, referenceGeluExact } from '../index.ts';
import { useWasmBackend, runWasmKernel } from '../testing.ts';
import { WASM_FUSED_KERNELS } from '../wasm.ts';
import { randomValues } from '../../wasm/test-helpers.ts';

beforeAll(useWasmBackend);

describe('TesseraGeluExact on wasm (vs the reference)', () => {

  // Tolerance: float32 arithmetic (Eigen's float erf, ~2 ulps of Phi near 1), an error of Phi
  // that x Phi(x) scales by |x|: |error| <= 3e-7 max(1, |x|). Measured on a grid of 400,001
  // points over [-20, 20]: 2.6e-7 for y, 2.4e-7 for dydx (the composite wasm path: 1.2e-7).
  it('GeluExact: y and dydx within float32 accuracy, tails, a dense grid and odd sizes included', () => {
    const grid = Float32Array.from({ length: 40001 }, (_, i) => -20 + i * 1e-3);
    const tails = [-1e4, -40, -13.5, -12, -9, -8, -6, -5.66, -5, -4, -3, -2, -1, -0.5, -1e-3, -1e-30, 0, 1e-30, 1e-3, 0.5, 1, 2, 3, 4, 5, 5.66, 6, 8, 9, 12, 13.5, 40, 1e4];
    for (const values of [Float32Array.from(tails), grid, randomValues(1001, 1, 3), randomValues(128 * 64 * 3 + 5, 2, 1.5)]) {
      const x = tf.tensor1d(values);
      const before = tf.memory().numTensors;
      const [y, dydx] = runWasmKernel(FUSED_KERNELS.geluExact, { x });
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
      const [y, dydx] = runWasmKernel(FUSED_KERNELS.geluExact, { x });
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
});
