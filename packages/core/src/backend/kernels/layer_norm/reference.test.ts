import { beforeAll, describe, expect, it } from 'vitest';
import { referenceLayerNorm, referenceLayerNormGrad } from '../index.ts';
import { useCpuKernels, noise } from '../testing.ts';

beforeAll(useCpuKernels);

describe("TesseraLayerNorm's and TesseraLayerNormGrad's references", () => {
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
});
