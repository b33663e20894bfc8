import { describe, expect, it } from 'vitest';
import { Rng, deriveSeed } from './random.ts';

describe('Rng', () => {
  it('replays the same stream for the same seed and differs for another', () => {
    const a = Array.from({ length: 5 }, ((r) => () => r.next())(new Rng(7)));
    const b = Array.from({ length: 5 }, ((r) => () => r.next())(new Rng(7)));
    const c = Array.from({ length: 5 }, ((r) => () => r.next())(new Rng(8)));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    for (const v of a) expect(v >= 0 && v < 1).toBe(true);
  });

  it('derives distinct seeds from (seed, epoch, batch) and is order-sensitive', () => {
    expect(deriveSeed(42, 0, 1)).toBe(deriveSeed(42, 0, 1));
    expect(deriveSeed(42, 0, 1)).not.toBe(deriveSeed(42, 1, 0));
    expect(deriveSeed(42, 0)).not.toBe(deriveSeed(43, 0));
  });

  it('samples uniform, normal and beta with the right moments', () => {
    const r = new Rng(1);
    const n = 20000;
    let su = 0, sn = 0, sn2 = 0, sb = 0;
    for (let i = 0; i < n; i++) {
      su += r.uniform(-1, 3);
      const z = r.normal();
      sn += z;
      sn2 += z * z;
      sb += r.beta(0.4, 0.4);
    }
    expect(su / n).toBeCloseTo(1, 1);
    expect(sn / n).toBeCloseTo(0, 1);
    expect(sn2 / n).toBeCloseTo(1, 1);
    expect(sb / n).toBeCloseTo(0.5, 1); // Beta(a, a) has mean 1/2
  });

  it('shuffles into a permutation', () => {
    const xs = new Int32Array(100).map((_, i) => i);
    new Rng(3).shuffle(xs);
    expect([...xs].sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
    expect([...xs]).not.toEqual([...Array(100).keys()]);
  });
});
