import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUSED_KERNELS, referenceLayerNorm, referenceLayerNormGrad } from '../index.ts';
import { useWasmBackend, worstError, runWasmKernel } from '../testing.ts';
import { randomValues } from '../../wasm/test-helpers.ts';

beforeAll(useWasmBackend);

describe('TesseraLayerNorm and TesseraLayerNormGrad on wasm (vs the reference)', () => {

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
      const [y, mean, rstd] = runWasmKernel(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon });
      const want = referenceLayerNorm(xv, gv, bv, epsilon);
      close(y!, want.y);
      close(mean!, want.mean);
      close(rstd!, want.rstd);
      const [meanT, rstdT] = [tf.tensor1d(mean!), tf.tensor1d(rstd!)];
      const [dx, dgamma, dbeta] = runWasmKernel(FUSED_KERNELS.layerNormGrad, { dy, x, mean: meanT, rstd: rstdT, gamma });
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
    const [y, mean, rstd] = runWasmKernel(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: 0 });
    tf.dispose([x, gamma, beta]);
    expect(Array.from(mean!)).toEqual([2.5, 11]);
    // Row 1: variance 1.25; row 2: variance 3.
    expect(rstd![0]).toBeCloseTo(1 / Math.sqrt(1.25), 6);
    expect(rstd![1]).toBeCloseTo(1 / Math.sqrt(3), 6);
    const row2 = Array.from(y!.subarray(4));
    [-1, -1, -1, 3].forEach((d, i) => expect(row2[i]).toBeCloseTo(d / Math.sqrt(3), 6));
  });
});
