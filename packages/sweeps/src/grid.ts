import { quantize, type Parameter, type ParamValue, type Params } from './space.ts';

/**
 * Grid search order: the Cartesian product of every parameter's `values` with parameters in file
 * order and the LAST parameter varying fastest (nested loops, like Python's itertools.product).
 * Trial i is the mixed-radix decoding of i, so any trial can be rebuilt from its index alone.
 */
export function gridSize(parameters: readonly Parameter[]): number {
  return parameters.reduce((n, p) => n * gridValues(p).length, 1);
}

export function gridPoint(parameters: readonly Parameter[], index: number): Params | null {
  if (index < 0 || index >= gridSize(parameters)) return null;
  const params: Params = {};
  let rest = index;
  for (let k = parameters.length - 1; k >= 0; k--) {
    const p = parameters[k]!;
    const values = gridValues(p);
    params[p.path] = values[rest % values.length]!;
    rest = Math.floor(rest / values.length);
  }
  // Keep the keys in file order (the loop above filled them backwards).
  return Object.fromEntries(parameters.map((p) => [p.path, params[p.path]!]));
}

/** The values a grid enumerates: categorical values, every integer of an int_uniform range, every multiple of q of a q_uniform one. */
export function gridValues(parameter: Parameter): readonly ParamValue[] {
  const d = parameter.distribution;
  if (d.type === 'categorical') return d.values;
  if (d.type === 'int_uniform') return Array.from({ length: d.max - d.min + 1 }, (_, i) => d.min + i);
  if (d.type === 'uniform' && d.q !== undefined) {
    const first = Math.ceil(d.min / d.q - 1e-9);
    const last = Math.floor(d.max / d.q + 1e-9);
    return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => quantize((first + i) * d.q!, d.q));
  }
  throw new Error(`grid search cannot enumerate the ${d.type} parameter "${parameter.path}": give it values`);
}
