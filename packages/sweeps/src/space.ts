import type { Rng } from './rng.ts';

/** A value a sweep may assign: what `--set path=value` accepts for a scalar. */
export type ParamValue = number | string | boolean;

/** A trial's assignment: parameter path (`train.optimizer.learning_rate`) to value. */
export type Params = Record<string, ParamValue>;

/**
 * Where a parameter's values come from. `log_uniform` is uniform in log space (learning rates,
 * weight decays); `int_uniform` includes both ends.
 */
export type Distribution =
  | { type: 'uniform'; min: number; max: number }
  | { type: 'log_uniform'; min: number; max: number }
  | { type: 'int_uniform'; min: number; max: number }
  | { type: 'categorical'; values: readonly ParamValue[] };

export interface Parameter {
  /** Dotted path into the experiment, e.g. `model.vars.embedding_dim`. */
  path: string;
  distribution: Distribution;
}

/** One draw from a parameter's distribution. */
export function sample(distribution: Distribution, rng: Rng): ParamValue {
  switch (distribution.type) {
    case 'uniform':
      return distribution.min + rng() * (distribution.max - distribution.min);
    case 'log_uniform': {
      const [lo, hi] = [Math.log(distribution.min), Math.log(distribution.max)];
      return clamp(Math.exp(lo + rng() * (hi - lo)), distribution.min, distribution.max);
    }
    case 'int_uniform':
      return Math.min(distribution.max, distribution.min + Math.floor(rng() * (distribution.max - distribution.min + 1)));
    case 'categorical':
      return distribution.values[Math.floor(rng() * distribution.values.length)]!;
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
