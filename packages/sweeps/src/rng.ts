/**
 * Seeded randomness for sweeps. Every draw comes from a stream named by integers
 * (`rngFor(seed, trialIndex, purpose)`), so trial i's parameters depend only on the seed and i,
 * never on how many draws other trials made or in which order trials ran.
 */

/** A source of uniform floats in [0, 1). */
export type Rng = () => number;

/** Mixes 32-bit words into one well-spread 32-bit word (murmur3's finalizer after each word). */
export function hashWords(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const word of words) {
    h = Math.imul(h ^ (word >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    h = (h + 0x6d2b79f5) >>> 0;
  }
  return h >>> 0;
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, PractRand-clean), its 128-bit
 * state filled from the hashed stream name.
 */
export function rngFor(seed: number, ...stream: number[]): Rng {
  let a = hashWords(seed, ...stream, 1);
  let b = hashWords(seed, ...stream, 2);
  let c = hashWords(seed, ...stream, 3);
  let d = 1;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // The first outputs of a freshly seeded sfc32 are still correlated with the seed words.
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** A standard normal draw (Box-Muller; `1 - u` keeps the log away from 0). */
export function normal(rng: Rng): number {
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** An index in [0, n) chosen with probability proportional to `weights[i]`. */
export function pickWeighted(rng: Rng, weights: readonly number[]): number {
  let total = 0;
  for (const w of weights) total += w;
  let r = rng() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return weights.length - 1;
}
