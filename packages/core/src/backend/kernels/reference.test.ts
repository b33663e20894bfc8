import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FUSED_KERNELS,
  dropoutKeeps,
  dropoutKey,
  dropoutPairBits,
  erf,
  hasFusedKernel,
  referenceDropout,
  referenceGeluExact,
  referenceLayerNorm,
  referenceLayerNormGrad,
} from './index.ts';
import { registerFusedKernels } from './index.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
  registerFusedKernels('cpu');
});

/** A deterministic pseudo-random vector in [-scale, scale). */
function noise(size: number, seed: number, scale = 3): Float64Array {
  const out = new Float64Array(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

describe('the fused kernels: reference implementations', () => {
  it('erf matches published values to 1e-14 on both sides of the series/continued-fraction switch', () => {
    // Python's math.erf (the C library's).
    const table: [number, number][] = [
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [-1.5, -0.9661051464753108],
      [2, 0.9953222650189527],
      [2.49, 0.9995707121322661],
      [2.51, 0.9996142945182758],
      [3, 0.9999779095030014],
      [5, 0.9999999999984626],
    ];
    for (const [x, value] of table) expect(erf(x)).toBeCloseTo(value, 14);
    expect(erf(0)).toBe(0);
  });

  it('GELU: value x Phi(x) and derivative equal finite differences of the value', () => {
    const x = [-6, -3.2, -1, -0.25, 0, 0.3, 1.7, 4, 9];
    const { y, dydx } = referenceGeluExact(x);
    x.forEach((v, i) => {
      expect(y[i]).toBeCloseTo(Math.fround(v * 0.5 * (1 + erf(v / Math.SQRT2))), 7);
      const h = 1e-4;
      const numeric = ((v + h) * (1 + erf((v + h) / Math.SQRT2)) - (v - h) * (1 + erf((v - h) / Math.SQRT2))) / (4 * h);
      expect(dydx[i]).toBeCloseTo(numeric, 6);
    });
    // Keras's gelu(1.0) = 0.8413447460685429, gelu(-1) = -0.15865525393145707.
    expect(y[6 - 4]).toBeCloseTo(-0.15865525393145707, 7);
  });

  it('LayerNorm: a hand-computed row, and the gradient equals finite differences of a weighted sum', () => {
    // Row [1, 2, 3, 6]: mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5.
    const { y, mean, rstd } = referenceLayerNorm([1, 2, 3, 6], [1, 2, 1, 1], [0, 0, 0.5, 0], 1e-6);
    const s = 1 / Math.sqrt(3.5 + 1e-6);
    expect(mean[0]).toBe(3);
    expect(rstd[0]).toBeCloseTo(s, 7);
    expect(Array.from(y)).toEqual([-2 * s, -1 * s * 2, 0.5, 3 * s].map(Math.fround));

    const rows = 3;
    const columns = 5;
    const x = noise(rows * columns, 1);
    const gamma = noise(columns, 2);
    const beta = noise(columns, 3);
    const w = noise(rows * columns, 4); // loss = sum(y * w), so dy = w
    const loss = (xs: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>) => {
      // float64 forward, independent of the float32 reference
      let total = 0;
      for (let r = 0; r < rows; r++) {
        const row = Array.from({ length: columns }, (_, c) => xs[r * columns + c]!);
        const m = row.reduce((a, v) => a + v, 0) / columns;
        const v = row.reduce((a, t) => a + (t - m) ** 2, 0) / columns;
        row.forEach((t, c) => (total += ((t - m) / Math.sqrt(v + 1e-6)) * g[c]! * w[r * columns + c]! + b[c]! * w[r * columns + c]!));
      }
      return total;
    };
    const forward = referenceLayerNorm(x, gamma, beta, 1e-6);
    const { dx, dgamma, dbeta } = referenceLayerNormGrad(w, x, forward.mean, forward.rstd, gamma);
    const h = 1e-5;
    const numeric = (values: Float64Array, i: number, f: (v: Float64Array) => number) => {
      const plus = values.slice();
      const minus = values.slice();
      plus[i]! += h;
      minus[i]! -= h;
      return (f(plus) - f(minus)) / (2 * h);
    };
    for (let i = 0; i < x.length; i++) expect(dx[i]).toBeCloseTo(numeric(x, i, (v) => loss(v, gamma, beta)), 3);
    for (let c = 0; c < columns; c++) {
      expect(dgamma[c]).toBeCloseTo(numeric(gamma, c, (v) => loss(x, v, beta)), 3);
      expect(dbeta[c]).toBeCloseTo(numeric(beta, c, (v) => loss(x, gamma, v)), 3);
    }
  });

  it('dropout: the hash is murmur3 fmix32 over a Weyl sequence (values from an independent Python computation)', () => {
    const key = dropoutKey(7);
    expect(key).toBe(0x18c9aec4);
    expect([0, 1, 2, 3].map((p) => dropoutPairBits(key, p))).toEqual([0x674f1cbe, 0xc4a4fe8d, 0x5076f5d7, 0xde361677]);
    expect(Array.from(dropoutKeeps(8, 0.5, 7))).toEqual([0, 0, 1, 1, 1, 0, 0, 1]);
    expect(Array.from(dropoutKeeps(7, 0.5, 7))).toEqual([0, 0, 1, 1, 1, 0, 0]);
  });

  it('dropout: drops the rate, scales the rest, and a different seed gives an uncorrelated mask', () => {
    const size = 200_001;
    for (const rate of [0, 0.2, 0.5, 0.9]) {
      const keeps = dropoutKeeps(size, rate, 11);
      const dropped = keeps.reduce((a, k) => a + (1 - k), 0) / size;
      // The binomial's standard deviation is below 0.0012.
      expect(Math.abs(dropped - rate)).toBeLessThan(0.005);
    }
    const a = dropoutKeeps(size, 0.5, 1);
    const b = dropoutKeeps(size, 0.5, 2);
    let same = 0;
    for (let i = 0; i < size; i++) same += a[i] === b[i] ? 1 : 0;
    expect(Math.abs(same / size - 0.5)).toBeLessThan(0.01);
    const y = referenceDropout([1, 2, 3, 4, 5, 6, 7, 8], 0.5, 7);
    expect(Array.from(y)).toEqual([0, 0, 6, 8, 10, 0, 0, 16]);
  });

  it('the cpu backend has every fused kernel, and they agree with the references', () => {
    for (const name of Object.values(FUSED_KERNELS)) expect(hasFusedKernel(name)).toBe(true);
    const x = tf.tensor2d([1, -2, 0.5, 3, 2, 2, -1, 0], [2, 4]);
    const gamma = tf.tensor1d([1, 0.5, 2, 1]);
    const beta = tf.tensor1d([0, 1, 0, -1]);
    const [y, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: 1e-6 }) as tf.Tensor[];
    const expected = referenceLayerNorm(x.dataSync(), gamma.dataSync(), beta.dataSync(), 1e-6);
    expect(y!.dataSync()).toEqual(expected.y);
    expect(mean!.shape).toEqual([2]);
    expect(rstd!.dataSync()).toEqual(expected.rstd);
    const dropped = tf.engine().runKernel(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 7 }) as tf.Tensor;
    expect(dropped.dataSync()).toEqual(referenceDropout(x.dataSync(), 0.5, 7));
    tf.dispose([x, gamma, beta, y!, mean!, rstd!, dropped]);
  });
});
