/**
 * Every seed of a run, derived from the run's one `seed` (or a sweep's) by the tree below, so
 * that any random decision is a pure function of where it happens: adding a layer changes no
 * other layer's weights, a resumed run draws exactly what the uninterrupted one drew, and trial
 * i of a sweep does not depend on the trials before it.
 *
 *   run seed (config `seed`)
 *   ├─ layer "block_1/dense_1"    layerSeed(run, name)              FNV-1a over "run:name", 31 bits
 *   │   └─ its n-th weight        childSeed(layer, n)               initializers (dense kernel n=0, bias n=1)
 *   ├─ training step (epoch, s)   stepSeed(run, epoch, s)           seeds Math.random (withSeededRandom)
 *   │   └─ dropout layer's mask   childSeed(layer, draw)            draw = the layer's Math.random draw,
 *   │                                                               the mask = dropout kernel's hash of it
 *   ├─ data: train/val split      deriveSeed(run, SPLIT)            murmur3-style word mixing
 *   │   ├─ epoch's shuffle        deriveSeed(run, epoch, shuffle)   (a streamed image folder: imageStreamShuffle)
 *   │   └─ transform t of batch b deriveSeed(run, epoch, b, t)      flips, zooms, crops, mixup
 *   └─ in-memory dataset shuffle  stepSeed(run, epoch, 0x5eed)
 *
 *   sweep seed
 *   └─ trial i, purpose p         deriveSeed(sweep, i, p)           random search draws, TPE's proposals
 *
 * Every stream is then a `Rng` (rng.ts). Two mixers remain, FNV-1a over a path of names and
 * numbers (names need a string hash) and deriveSeed over integers; replacing either would change
 * the weights, dropout masks or augmentations of every recorded run (docs/results.md), so both
 * are kept, each with its one role above.
 */

/** The data pipeline's stream names (the last part of a deriveSeed path). */
export const SEED_STREAMS = {
  shuffle: 0x5f3759df,
  split: 0x5ab1e,
  imageStreamShuffle: 0x57e4a,
  memoryShuffle: 0x5eed,
} as const;

/** 32-bit FNV-1a over the code points of `text`. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const char of text) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The seed of a training step's random stream (and of other (seed, number, ...) paths): FNV-1a of "a:b:c". */
export function stepSeed(...parts: number[]): number {
  return fnv1a(parts.join(':'));
}

/** A layer's seed: a 31-bit integer from the run seed and the layer's full name. */
export function layerSeed(seed: number, name: string): number {
  return (fnv1a(`${seed}:${name}`) >>> 1) % 2147483647;
}

/** A distinct 31-bit seed for the n-th child of `seed` (a layer's n-th weight, a dropout mask's draw). */
export function childSeed(seed: number, n: number): number {
  // A multiplicative hash keeps neighbouring seeds far apart; the result stays a 31-bit integer.
  return (Math.imul(seed ^ (n * 0x9e3779b1), 0x85ebca6b) >>> 1) % 2147483647;
}

/** Mixes any number of integers into one 32-bit seed (murmur3's finaliser over a running hash). */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    h = Math.imul(h ^ (part | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    // Parts beyond 32 bits (e.g. large seeds) still count.
    h = Math.imul(h ^ Math.floor(part / 4294967296), 0x27d4eb2f);
    h ^= h >>> 15;
  }
  return h >>> 0;
}

/** murmur3's 32-bit finaliser: a bijection on uint32 in which every input bit flips ~half the output bits. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
