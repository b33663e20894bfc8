import { beforeAll, describe, expect, it } from 'vitest';
import { dropoutKeeps, dropoutKey, dropoutPairBits, referenceDropout } from '../index.ts';
import { useCpuKernels } from '../testing.ts';

beforeAll(useCpuKernels);

describe("TesseraDropout's reference: the mask's hash", () => {
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
});
