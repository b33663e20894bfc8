import { fmix32 } from '../../../random/index.ts';

/* TesseraDropout (../contract.ts): the mask's counter-based hash, which every backend computes alike, and the reference. */

/** The drop threshold: a unit drops when its 16 random bits are below ceil(rate * 65536). */
export function dropoutThreshold(rate: number): number {
  return Math.ceil(rate * 65536);
}

/** The factor kept units are scaled by: float32(1 / (1 - rate)), from the float64 rate. */
export function dropoutScale(rate: number): number {
  return Math.fround(1 / (1 - rate));
}

/** The per-mask key mixed into every unit's hash (fmix32 of the seed). */
export function dropoutKey(seed: number): number {
  return fmix32(seed >>> 0);
}

/** The Weyl sequence's step between consecutive pairs of units (2^32 / the golden ratio, odd). */
export const DROPOUT_WEYL_STEP = 0x9e3779b1;

/**
 * The 32 random bits of units 2p and 2p+1 of a mask: fmix32(key + p * DROPOUT_WEYL_STEP mod 2^32),
 * a counter-based stream (a Weyl sequence through a good mixer), so any unit's decision is
 * computed on its own, in any order, on any thread, identically on every backend. Unit 2p uses
 * the low 16 bits, unit 2p+1 the high 16.
 */
export function dropoutPairBits(key: number, pair: number): number {
  return fmix32((key + Math.imul(pair, DROPOUT_WEYL_STEP)) >>> 0);
}

/** 1 where unit i of a `size`-unit mask is kept, 0 where dropped (the reference for every backend). */
export function dropoutKeeps(size: number, rate: number, seed: number): Uint8Array {
  const keeps = new Uint8Array(size);
  const threshold = dropoutThreshold(rate);
  const key = dropoutKey(seed);
  for (let i = 0; i < size; i += 2) {
    const bits = dropoutPairBits(key, i >>> 1);
    keeps[i] = (bits & 0xffff) >= threshold ? 1 : 0;
    if (i + 1 < size) keeps[i + 1] = bits >>> 16 >= threshold ? 1 : 0;
  }
  return keeps;
}

/** TesseraDropout on plain arrays. */
export function referenceDropout(x: ArrayLike<number>, rate: number, seed: number): Float32Array {
  const keeps = dropoutKeeps(x.length, rate, seed);
  const scale = dropoutScale(rate);
  const y = new Float32Array(x.length);
  // A product even for dropped units: -x * 0 is -0, as in the composite x * mask.
  for (let i = 0; i < x.length; i++) y[i] = x[i]! * (keeps[i] ? scale : 0);
  return y;
}
