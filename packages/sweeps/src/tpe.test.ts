import { describe, expect, it } from 'vitest';
import { deriveSeed, Rng } from '@tessera/core';
import { fitEstimator, normalCdf, ParzenEstimator } from './tpe.ts';

describe('Parzen estimator', () => {
  it('normal CDF matches tabulated values', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.96)).toBeCloseTo(0.9750021, 6);
    expect(normalCdf(-1)).toBeCloseTo(0.1586553, 6);
  });

  it('is a density on [low, high]: it integrates to 1 (midpoint rule)', () => {
    const p = new ParzenEstimator(-2, 3, [-1.9, 0.2, 0.25, 2.9], 1);
    const steps = 20000;
    const h = 5 / steps;
    let integral = 0;
    for (let i = 0; i < steps; i++) integral += Math.exp(p.logDensityAt(-2 + (i + 0.5) * h)) * h;
    expect(integral).toBeCloseTo(1, 4);
  });

  it('uses hyperopt bandwidths: the larger neighbour gap, clipped to [range/min(100, n+1), range]', () => {
    // Points 0.1, 0.4 and the prior mean 0.5 on [0, 1]: n = 3 components, min sigma 1/4.
    const p = new ParzenEstimator(0, 1, [0.4, 0.1], 1);
    expect(p.mus).toEqual([0.1, 0.4, 0.5]);
    expect(p.sigmas[0]).toBeCloseTo(0.3, 12); // gap to 0.4
    expect(p.sigmas[1]).toBeCloseTo(0.3, 12); // max(0.3, 0.1)
    expect(p.sigmas[2]).toBe(1); // the prior keeps the full range
  });

  it('gives integer parameters probabilities over their bins that sum to 1', () => {
    const est = fitEstimator({ path: 'k', distribution: { type: 'int_uniform', min: 1, max: 6 } }, [2, 2, 5], 1);
    let total = 0;
    for (let k = 1; k <= 6; k++) total += Math.exp(est.logDensity(k));
    expect(total).toBeCloseTo(1, 6);
    expect(est.logDensity(2)).toBeGreaterThan(est.logDensity(4));
    const rng = new Rng(deriveSeed(1, 0));
    for (let i = 0; i < 200; i++) {
      const v = est.sample(rng) as number;
      expect(Number.isInteger(v) && v >= 1 && v <= 6).toBe(true);
    }
  });

  it('smooths categorical counts: (count + prior/K) / (n + prior)', () => {
    const est = fitEstimator({ path: 'c', distribution: { type: 'categorical', values: ['a', 'b', 'c', 'd'] } }, ['a', 'a', 'b'], 1);
    expect(Math.exp(est.logDensity('a'))).toBeCloseTo(2.25 / 4, 12);
    expect(Math.exp(est.logDensity('c'))).toBeCloseTo(0.25 / 4, 12);
    expect(est.logDensity('zzz')).toBe(-Infinity);
  });

  it('fits log_uniform parameters in log space', () => {
    const est = fitEstimator({ path: 'lr', distribution: { type: 'log_uniform', min: 1e-5, max: 1 } }, [1e-3, 1.1e-3, 0.9e-3], 1);
    const rng = new Rng(deriveSeed(2, 0));
    const draws = Array.from({ length: 2000 }, () => est.sample(rng) as number);
    const nearOptimum = draws.filter((x) => x > 1e-4 && x < 1e-2).length / draws.length;
    // Expected share of [1e-4, 1e-2]: three components at ln(~1e-3) whose bandwidth is clipped up to
    // the minimum ln(1e5) / 5 (four components + 1), and the prior (mean ln(1e-2.5), sigma ln(1e5)),
    // each truncated to [ln 1e-5, ln 1].
    const [lo, hi, range] = [Math.log(1e-5), 0, Math.log(1e5)];
    const share = (mu: number, sigma: number) =>
      (normalCdf((Math.log(1e-2) - mu) / sigma) - normalCdf((Math.log(1e-4) - mu) / sigma)) /
      (normalCdf((hi - mu) / sigma) - normalCdf((lo - mu) / sigma));
    const expected = ([0.9e-3, 1e-3, 1.1e-3].reduce((a, x) => a + share(Math.log(x), range / 5), 0) + share(lo + range / 2, range)) / 4;
    expect(expected).toBeCloseTo(0.63, 2);
    expect(Math.abs(nearOptimum - expected)).toBeLessThan(0.03);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(1e-5);
    expect(Math.max(...draws)).toBeLessThanOrEqual(1);
  });
});
