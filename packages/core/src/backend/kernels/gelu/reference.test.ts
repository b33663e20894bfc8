import { beforeAll, describe, expect, it } from 'vitest';
import { erf, referenceGeluExact } from '../index.ts';
import { useCpuKernels } from '../testing.ts';

beforeAll(useCpuKernels);

describe("TesseraGeluExact's reference", () => {
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
});
