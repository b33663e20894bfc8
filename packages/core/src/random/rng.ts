/** The one seeded generator; its seeds come from the derivation tree in seeds.ts. */

/**
 * mulberry32 (Tommy Ettinger's 32-bit-state generator): uniform floats in [0, 1), small and fast;
 * its 2^32 period is far beyond any single stream drawn here (one batch's augmentations, one
 * trial's parameters, one training step's dropout draws).
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A standard normal draw (Box-Muller; 1 - next() keeps the log argument in (0, 1]). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Gamma(shape, 1) by Marsaglia and Tsang, boosted for shape < 1. */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.next() || Number.MIN_VALUE, 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.next();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  beta(alpha: number, beta: number): number {
    const a = this.gamma(alpha);
    return a / (a + this.gamma(beta));
  }

  /** An index in [0, weights.length) chosen with probability proportional to `weights[i]`. */
  pick(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: any }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }
}

/**
 * Runs the synchronous `fn` with Math.random drawing from `new Rng(seed)`, then puts Math.random
 * back. TF.js random ops given no seed (and the dropout layers' per-call draws) read Math.random,
 * so the trainer runs each step under stepSeed(run seed, epoch, step). `fn` must not await:
 * other code would see the seeded generator.
 */
export function withSeededRandom<T>(seed: number, fn: () => T): T {
  const original = Math.random;
  const rng = new Rng(seed);
  Math.random = () => rng.next();
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
