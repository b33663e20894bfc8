import { describe, expect, it } from 'vitest';
import { childSeed, deriveSeed, fingerprint, fmix32, fnv1a, layerSeed, Rng, stepSeed, withSeededRandom } from './index.ts';

/*
 * Pinned values: the seeds and streams of every recorded run (docs/results.md) depend on these
 * functions bit for bit, so they are pinned to the outputs of the implementations they replaced
 * (engine/rng.ts, graph/build.ts, models' common.ts, data/random.ts, sweep/state.ts) and, where
 * one exists, to a published test vector.
 */
describe('the seed tree', () => {
  it('FNV-1a and fmix32 match their published test vectors', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7);
  });

  it('derives the same seeds as before the randomness was gathered here', () => {
    expect([stepSeed(42, 0, 3), stepSeed(42, 3, 0x5eed)]).toEqual([2983128806, 3592600742]);
    expect([layerSeed(42, 'block_1/dense_1'), layerSeed(7, 'logits'), layerSeed(42, 'é/ü')]).toEqual([400816518, 1384088428, 1411244322]);
    expect([childSeed(123, 0), childSeed(123, 1), childSeed(2147483646, 1073741823)]).toEqual([740630708, 1390126519, 1288582293]);
    expect([deriveSeed(42, 1, 2, 3), deriveSeed(2 ** 40 + 5, 0x5ab1e)]).toEqual([3438817062, 3838897607]);
    expect(fmix32(0xdeadbeef)).toBe(233162409);
  });

  it('keeps siblings apart: other layers, other steps, other weights, argument order', () => {
    expect(layerSeed(1, 'block_1/dense_1')).not.toBe(layerSeed(1, 'block_2/dense_1'));
    expect(layerSeed(2, 'block_1/dense_1')).not.toBe(layerSeed(1, 'block_1/dense_1'));
    expect(stepSeed(42, 0, 1)).not.toBe(stepSeed(42, 1, 0));
    expect(childSeed(5, 0)).not.toBe(childSeed(5, 1));
    expect(deriveSeed(42, 0, 1)).not.toBe(deriveSeed(42, 1, 0));
    expect(deriveSeed(42, 0)).not.toBe(deriveSeed(43, 0));
    for (const s of [layerSeed(9, 'x'), childSeed(9, 3)]) expect(Number.isInteger(s) && s >= 0 && s < 2147483647).toBe(true);
  });
});

describe('Rng', () => {
  it('is mulberry32: the stream of seed 7, replayed, and another for seed 8', () => {
    const draw = (seed: number) => ((r) => Array.from({ length: 3 }, () => r.next()))(new Rng(seed));
    expect(draw(7)).toEqual([0.011704753153026104, 0.06195825757458806, 0.97690763277933]);
    expect(draw(7)).toEqual(draw(7));
    expect(draw(8)).not.toEqual(draw(7));
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

  it('picks by weight and shuffles into a permutation', () => {
    const r = new Rng(2);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30000; i++) counts[r.pick([1, 0, 3])]!++;
    expect(counts[1]).toBe(0);
    expect(counts[2]! / counts[0]!).toBeCloseTo(3, 0);
    const xs = new Int32Array(100).map((_, i) => i);
    new Rng(3).shuffle(xs);
    expect([...xs].sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
    expect([...xs]).not.toEqual([...Array(100).keys()]);
  });

  it('withSeededRandom replays a seeded Math.random and puts the original back', () => {
    const original = Math.random;
    const a = withSeededRandom(7, () => [Math.random(), Math.random()]);
    expect(a).toEqual([0.011704753153026104, 0.06195825757458806]);
    expect(Math.random).toBe(original);
    expect(() => withSeededRandom(7, () => { throw new Error('boom'); })).toThrow('boom');
    expect(Math.random).toBe(original);
  });
});

describe('fingerprint', () => {
  it('ignores key order and undefined members, sees every value', () => {
    expect(fingerprint({ b: 1, a: [1, { d: 2, c: 'x' }] })).toBe('7ace72b1ed17eda5');
    expect(fingerprint({ a: [1, { c: 'x', d: 2 }], b: 1, e: undefined })).toBe('7ace72b1ed17eda5');
    expect(fingerprint({ a: [1, { c: 'x', d: 3 }], b: 1 })).not.toBe('7ace72b1ed17eda5');
    expect(fingerprint([1, 2])).not.toBe(fingerprint([2, 1]));
  });
});
