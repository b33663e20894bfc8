import type { Rng } from '@tessera/core';

/** A value a sweep may assign: what `--set path=value` accepts for a scalar. */
export type ParamValue = number | string | boolean;

/** A trial's assignment: parameter path (`train.optimizer.learning_rate`) to value. */
export type Params = Record<string, ParamValue>;

/**
 * Where a parameter's values come from, after loading (load.ts turns W&B's names into these):
 * `log_uniform` is log-uniform over the VALUES min..max (W&B's `log_uniform_values`; W&B's
 * `log_uniform` takes exponents and is converted); `int_uniform` includes both ends; `q` rounds a
 * draw to a multiple of q (W&B's q_* distributions); `probabilities` weight categorical values.
 */
export type Distribution =
  | { type: 'uniform'; min: number; max: number; q?: number }
  | { type: 'log_uniform'; min: number; max: number; q?: number }
  | { type: 'int_uniform'; min: number; max: number }
  | { type: 'normal'; mu: number; sigma: number; q?: number }
  | { type: 'log_normal'; mu: number; sigma: number; q?: number }
  | { type: 'categorical'; values: readonly ParamValue[]; probabilities?: readonly number[] };

export interface Parameter {
  /** Dotted path into the experiment, e.g. `model.vars.embedding_dim`. */
  path: string;
  distribution: Distribution;
}

/** Rounds to a multiple of q (W&B: round(X / q) * q), without float noise like 0.30000000000000004. */
export function quantize(value: number, q: number | undefined): number {
  if (q === undefined) return value;
  const digits = Math.max(0, -Math.floor(Math.log10(q)) + 6);
  return Number((Math.round(value / q) * q).toFixed(Math.min(digits, 20)));
}

/** One draw from a parameter's distribution. */
export function sample(distribution: Distribution, rng: Rng): ParamValue {
  const d = distribution;
  switch (d.type) {
    case 'uniform':
      return quantize(d.min + rng.next() * (d.max - d.min), d.q);
    case 'log_uniform': {
      const [lo, hi] = [Math.log(d.min), Math.log(d.max)];
      return quantize(clamp(Math.exp(lo + rng.next() * (hi - lo)), d.min, d.max), d.q);
    }
    case 'int_uniform':
      return Math.min(d.max, d.min + Math.floor(rng.next() * (d.max - d.min + 1)));
    case 'normal':
      return quantize(d.mu + d.sigma * rng.normal(), d.q);
    case 'log_normal':
      return quantize(Math.exp(d.mu + d.sigma * rng.normal()), d.q);
    case 'categorical':
      return d.values[d.probabilities ? rng.pick(d.probabilities) : Math.floor(rng.next() * d.values.length)]!;
  }
}

/** Draws every parameter in file order from one stream. */
export function sampleParams(parameters: readonly Parameter[], rng: Rng): Params {
  const params: Params = {};
  for (const p of parameters) params[p.path] = sample(p.distribution, rng);
  return params;
}

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/**
 * The `--set` arguments that apply a trial's params to the base experiment. Values are written
 * so that parsing them as YAML gives them back exactly: numbers in JavaScript's shortest
 * round-trip form, strings JSON-quoted (a JSON string is a YAML string) so `yes` or `1e3` stay
 * strings.
 */
export function toOverrides(params: Params): string[] {
  return Object.entries(params).map(([path, value]) => `${path}=${formatValue(value)}`);
}

function formatValue(value: ParamValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** Short names of common hyperparameters in run names (as people write them in papers and W&B). */
const SHORT_NAMES: Record<string, string> = { learning_rate: 'lr', weight_decay: 'wd', batch_size: 'bs', embedding_dim: 'dim', dropout_rate: 'dropout' };

/**
 * A trial's run name: `trial-003 lr=0.003 units=32`. Each parameter by the last segment of its
 * path (shortened as in SHORT_NAMES), or by more segments where two would read the same; numbers
 * to 4 significant digits.
 */
export function trialRunName(trialId: string, params: Params): string {
  const paths = Object.keys(params);
  const split = paths.map((path) => path.replace(/\[(\d+)\]/g, '.$1').split('.'));
  const names = split.map((segments) => {
    const last = segments.at(-1)!;
    return SHORT_NAMES[last] ?? last;
  });
  // Two parameters that end alike (layers.1.units, layers.3.units): each by its whole path.
  const alike = names.map((name) => names.filter((n) => n === name).length > 1);
  alike.forEach((same, i) => {
    if (same) names[i] = split[i]!.join('.');
  });
  const parts = paths.map((path, i) => {
    const value = params[path]!;
    return `${names[i]}=${typeof value === 'number' ? String(Number(value.toPrecision(4))) : String(value)}`;
  });
  return [trialId, ...parts].join(' ');
}
