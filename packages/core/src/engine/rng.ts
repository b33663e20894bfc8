/**
 * Deterministic randomness for the training step. TF.js random ops given no seed (dropout
 * layers, for one) draw their seed from Math.random, so the trainer runs each step with
 * Math.random replaced by a generator seeded from (run seed, epoch, step). The random stream of
 * a step is then a pure function of where it is in the run: a resumed run draws exactly what
 * the uninterrupted run drew, and the checkpoint needs no generator state beyond its position.
 */

/** 32-bit FNV-1a over the numbers' decimal text: a cheap, stable way to mix a few integers. */
export function mixSeed(...parts: number[]): number {
  let hash = 0x811c9dc5;
  for (const ch of parts.join(':')) {
    hash ^= ch.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** mulberry32: small, fast, good enough to seed TF.js's own generators. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs the synchronous `fn` with Math.random seeded by `seed`, then puts Math.random back.
 * `fn` must not await: other code would see the seeded generator.
 */
export function withSeededRandom<T>(seed: number, fn: () => T): T {
  const original = Math.random;
  Math.random = mulberry32(seed);
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
