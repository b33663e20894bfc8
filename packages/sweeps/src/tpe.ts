import type { Rng } from '@tessera/core';
import { clamp, quantize, type Parameter, type ParamValue, type Params } from './space.ts';

/**
 * Tree-structured Parzen Estimator (Bergstra, Bardenet, Bengio, Kégl 2011, "Algorithms for
 * Hyper-Parameter Optimization"), the independent variant used by hyperopt and Optuna:
 *
 * 1. sort the observed trials by loss and split them at the gamma quantile into "good" (the best
 *    ceil(gamma * n)) and "bad" (the rest);
 * 2. per parameter, fit a Parzen estimator l(x) to the good values and g(x) to the bad ones: a
 *    mixture of truncated Gaussians, one per observation plus a wide prior component, bandwidths
 *    from the distance to the neighbouring observations (hyperopt's adaptive Parzen estimator),
 *    fitted in log space for log_uniform and over integer bins for int_uniform; categorical
 *    parameters get smoothed counts instead;
 * 3. draw `candidates` points from l and return the one that maximises l(x) / g(x), which is the
 *    point that maximises expected improvement under the TPE model.
 */
export interface TpeOptions {
  /** Share of observations treated as good. */
  gamma: number;
  /** How many candidates are drawn from l(x) per suggestion. */
  candidates: number;
  /** Weight of the prior component (and the pseudo-count of each category). */
  priorWeight: number;
}

export const TPE_DEFAULTS: TpeOptions = { gamma: 0.25, candidates: 24, priorWeight: 1 };

/** A finished trial as TPE sees it: its params and a loss (lower is better). */
export interface LossObservation {
  params: Params;
  loss: number;
}

export function tpeSuggest(
  parameters: readonly Parameter[],
  observations: readonly LossObservation[],
  rng: Rng,
  options: TpeOptions = TPE_DEFAULTS,
): Params {
  const sorted = [...observations].sort((a, b) => a.loss - b.loss);
  const nGood = Math.max(1, Math.ceil(options.gamma * sorted.length));
  const good = sorted.slice(0, nGood);
  const bad = sorted.slice(nGood);

  const models = parameters.map((p) => ({
    parameter: p,
    l: fitEstimator(p, good.map((o) => o.params[p.path]), options.priorWeight),
    g: fitEstimator(p, bad.map((o) => o.params[p.path]), options.priorWeight),
  }));

  let best: Params = {};
  let bestScore = -Infinity;
  for (let c = 0; c < options.candidates; c++) {
    const candidate: Params = {};
    let score = 0;
    for (const { parameter, l, g } of models) {
      const value = l.sample(rng);
      candidate[parameter.path] = value;
      score += l.logDensity(value) - g.logDensity(value);
    }
    if (score > bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return best;
}

/** A one-dimensional density over a parameter's values that can be sampled. */
export interface Estimator {
  sample(rng: Rng): ParamValue;
  logDensity(value: ParamValue): number;
}

/** Fits l or g for one parameter; values of the wrong type (edited state files) are ignored. */
export function fitEstimator(parameter: Parameter, values: readonly (ParamValue | undefined)[], priorWeight: number): Estimator {
  const d = parameter.distribution;
  if (d.type === 'categorical') return new CategoricalEstimator(d.values, values, priorWeight);
  if (d.type === 'normal' || d.type === 'log_normal') {
    // loadSweep refuses these for bayes: TPE's Parzen estimators live on a bounded range.
    throw new Error(`TPE needs a bounded range; "${parameter.path}" is ${d.type}`);
  }
  const numbers = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (d.type === 'log_uniform') {
    const inner = new ParzenEstimator(Math.log(d.min), Math.log(d.max), numbers.filter((v) => v > 0).map(Math.log), priorWeight);
    return {
      sample: (rng) => quantize(clamp(Math.exp(inner.sampleInner(rng)), d.min, d.max), d.q),
      // The density of log(x); the Jacobian 1/x is the same for l and g, so it cancels in l/g.
      logDensity: (v) => inner.logDensityAt(Math.log(v as number)),
    };
  }
  if (d.type === 'int_uniform') {
    // Each integer k owns the bin [k - 0.5, k + 0.5]: the estimator lives on the continuous range
    // and an integer's probability is its bin's mass.
    const inner = new ParzenEstimator(d.min - 0.5, d.max + 0.5, numbers, priorWeight);
    return {
      sample: (rng) => clamp(Math.round(inner.sampleInner(rng)), d.min, d.max),
      logDensity: (v) => inner.logMass((v as number) - 0.5, (v as number) + 0.5),
    };
  }
  const inner = new ParzenEstimator(d.min, d.max, numbers, priorWeight);
  return { sample: (rng) => quantize(inner.sampleInner(rng), d.q), logDensity: (v) => inner.logDensityAt(v as number) };
}

/** A mixture of Gaussians truncated to [low, high]: one per observation plus a prior one. */
export class ParzenEstimator {
  readonly mus: number[];
  readonly sigmas: number[];
  readonly weights: number[];
  /** Each component's mass inside [low, high], to renormalise the truncated Gaussians. */
  private readonly masses: number[];

  constructor(
    readonly low: number,
    readonly high: number,
    observed: readonly number[],
    priorWeight: number,
  ) {
    const range = high - low;
    const priorMu = (low + high) / 2;
    const points = observed.map((x) => clamp(x, low, high));
    // hyperopt's adaptive bandwidth: sort the observations together with the prior mean, give each
    // the larger gap to its neighbours, clip to [range / min(100, n + 1), range].
    const all = [...points.map((x) => ({ mu: x, prior: false })), { mu: priorMu, prior: true }].sort((a, b) => a.mu - b.mu);
    const minSigma = range / Math.min(100, all.length + 1);
    this.mus = [];
    this.sigmas = [];
    this.weights = [];
    all.forEach((c, i) => {
      this.mus.push(c.mu);
      if (c.prior) {
        this.sigmas.push(range);
        this.weights.push(priorWeight);
        return;
      }
      const left = i > 0 ? c.mu - all[i - 1]!.mu : 0;
      const right = i < all.length - 1 ? all[i + 1]!.mu - c.mu : 0;
      this.sigmas.push(clamp(Math.max(left, right), minSigma, range));
      this.weights.push(1);
    });
    this.masses = this.mus.map((mu, i) => normalCdf((high - mu) / this.sigmas[i]!) - normalCdf((low - mu) / this.sigmas[i]!));
  }

  sampleInner(rng: Rng): number {
    const k = rng.pick(this.weights);
    const [mu, sigma] = [this.mus[k]!, this.sigmas[k]!];
    // Rejection sampling is cheap here: every mean lies inside [low, high] and sigma <= range,
    // so at least a third of each component's mass is inside.
    for (let attempt = 0; attempt < 100; attempt++) {
      const x = mu + sigma * rng.normal();
      if (x >= this.low && x <= this.high) return x;
    }
    return clamp(mu, this.low, this.high);
  }

  logDensityAt(x: number): number {
    let total = 0;
    let density = 0;
    for (let i = 0; i < this.mus.length; i++) {
      const z = (x - this.mus[i]!) / this.sigmas[i]!;
      density += (this.weights[i]! * Math.exp(-0.5 * z * z)) / (Math.sqrt(2 * Math.PI) * this.sigmas[i]! * this.masses[i]!);
      total += this.weights[i]!;
    }
    return Math.log(density / total);
  }

  logMass(from: number, to: number): number {
    let total = 0;
    let mass = 0;
    for (let i = 0; i < this.mus.length; i++) {
      const [mu, sigma] = [this.mus[i]!, this.sigmas[i]!];
      mass += (this.weights[i]! * (normalCdf((to - mu) / sigma) - normalCdf((from - mu) / sigma))) / this.masses[i]!;
      total += this.weights[i]!;
    }
    return Math.log(Math.max(mass, Number.MIN_VALUE) / total);
  }
}

class CategoricalEstimator implements Estimator {
  private readonly weights: number[];
  private readonly total: number;

  constructor(
    private readonly choices: readonly ParamValue[],
    observed: readonly (ParamValue | undefined)[],
    priorWeight: number,
  ) {
    // Smoothed counts: every category starts with an equal share of the prior weight.
    this.weights = choices.map(() => priorWeight / choices.length);
    for (const value of observed) {
      const k = choices.indexOf(value as ParamValue);
      if (k >= 0) this.weights[k]! += 1;
    }
    this.total = this.weights.reduce((a, b) => a + b, 0);
  }

  sample(rng: Rng): ParamValue {
    return this.choices[rng.pick(this.weights)]!;
  }

  logDensity(value: ParamValue): number {
    const k = this.choices.indexOf(value);
    return k < 0 ? -Infinity : Math.log(this.weights[k]! / this.total);
  }
}

/** The standard normal CDF. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/**
 * Complementary error function, Numerical Recipes' Chebyshev fit (`erfcc`): fractional error
 * below 1.2e-7 everywhere, good enough for bin masses of integer parameters.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
