import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, relative, resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import {
  loadExperiment,
  type LoadedConfig,
  parseOverride,
  isPlainObject,
  parseYamlFile,
  ConfigError,
  ConfigErrors,
  describeValue,
  formatPath,
  isConfigError,
  throwIfAny,
  type ConfigPath,
  createRegistries,
  type Registries,
  type SourceLocation,
  didYouMean,
  explainErrors,
  loadValidatedExperiment,
} from '@tessera/core';
import { defaultBrackets, type EarlyTerminate } from './early-stop.ts';
import { gridSize } from './grid.ts';
import { sweepSchema } from './schema.ts';
import type { Distribution, Parameter, ParamValue } from './space.ts';
import type { SweepSpec } from './spec.ts';
import { TPE_DEFAULTS } from './tpe.ts';

/** A sweep file as written (after schema validation). */
interface SweepFile {
  name?: string;
  description?: string;
  experiment: string;
  method: SweepSpec['method'];
  objective: { metric: string; goal: 'maximize' | 'minimize'; summary?: 'last' | 'best' };
  parameters: Record<string, { distribution?: Distribution['type']; min?: number; max?: number; values?: ParamValue[] }>;
  max_trials?: number;
  parallel?: number;
  seed?: number;
  max_attempts?: number;
  early_terminate?: { type: EarlyTerminate['type']; min_epochs?: number; min_trials?: number; grace_period?: number; reduction_factor?: number; max_epochs?: number; brackets?: number };
  bayes?: { startup_trials?: number; candidates?: number; gamma?: number; prior_weight?: number };
}

export interface LoadedSweep {
  spec: SweepSpec;
  /** The base experiment as loaded (with the sweep-wide overrides). */
  base: LoadedConfig;
  locate(path: ConfigPath): SourceLocation;
}

export interface LoadSweepOptions {
  /**
   * With registries, the base experiment is validated as a run validates it (the schema and every
   * template instance) and so is the experiment with each parameter at its extremes (every
   * categorical value, min and max): a sweep that would build an invalid trial fails before any trial runs.
   */
  registries?: Registries;
  /** `--set` arguments for every trial (applied before the trial's own). */
  overrides?: readonly string[];
}

let validator: ValidateFunction | undefined;

/**
 * Loads and checks a sweep file: schema (located errors, did-you-mean), bounds, the base
 * experiment, and that every parameter path exists in it. Throws ConfigError(s).
 */
export function loadSweep(file: string, options: LoadSweepOptions = {}): LoadedSweep {
  const absolute = resolve(file);
  if (!existsSync(absolute) || statSync(absolute).isDirectory()) {
    throw new ConfigError({ message: `sweep file "${file}" not found`, hint: nearbyFile(absolute) });
  }
  const parsed = parseYamlFile(absolute);
  const start: SourceLocation = { file: absolute, line: 1, col: 1 };
  const locate = (path: ConfigPath): SourceLocation => parsed.locations.value(path) ?? start;
  const locateKey = (path: ConfigPath): SourceLocation => parsed.locations.key(path) ?? start;
  const located = { config: parsed.value, locate, locateKey };

  validator ??= new Ajv({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true }).compile(sweepSchema());
  if (!validator(parsed.value)) {
    // No registry-backed unions in this schema: an empty set of registries explains every error.
    throwIfAny(explainErrors(validator.errors ?? [], located, createRegistries()));
  }
  const raw = parsed.value as unknown as SweepFile;
  const errors: ConfigError[] = [];
  const fail = (path: ConfigPath, init: { message?: string; expected?: string; found?: string; hint?: string }, key = false): void => {
    errors.push(new ConfigError({ location: key ? locateKey(path) : locate(path), path, ...init }));
  };

  const parameters = Object.entries(raw.parameters).map(([path, p]) => toParameter(path, p, fail));
  if (raw.method === 'grid') {
    for (const p of parameters) {
      if (p.distribution.type === 'uniform' || p.distribution.type === 'log_uniform') {
        fail(['parameters', p.path], { message: `grid search cannot enumerate a ${p.distribution.type} distribution`, hint: 'give it values: [...]' }, true);
      }
    }
  } else if (raw.max_trials === undefined) {
    fail([], { message: `missing required key "max_trials": a ${raw.method} search needs a budget` });
  }

  const experimentPath = resolve(dirname(absolute), raw.experiment);
  if (!existsSync(experimentPath) || statSync(experimentPath).isDirectory()) {
    fail(['experiment'], { message: `experiment file "${raw.experiment}" not found (looked for ${relative(process.cwd(), experimentPath)})`, hint: nearbyFile(experimentPath) });
  }
  throwIfAny(errors);

  const baseOverrides = [...(options.overrides ?? [])];
  const base = loadExperiment(experimentPath, { overrides: baseOverrides });
  if (options.registries) loadValidatedExperiment(experimentPath, options.registries, { overrides: baseOverrides });
  for (const p of parameters) checkPath(p.path, base, (init) => fail(['parameters', p.path], init, true));
  throwIfAny(errors);
  if (options.registries) for (const p of parameters) checkValues(p, experimentPath, baseOverrides, options.registries, fail);
  throwIfAny(errors);

  const maxEpochs = raw.early_terminate?.max_epochs ?? (base.config.train as { epochs?: unknown } | undefined)?.epochs;
  const earlyTerminate = toEarlyTerminate(raw.early_terminate, maxEpochs, fail);
  throwIfAny(errors);

  const spec: SweepSpec = {
    name: raw.name ?? basename(absolute, extname(absolute)),
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    file: absolute,
    experiment: experimentPath,
    baseOverrides,
    method: raw.method,
    objective: { metric: raw.objective.metric, goal: raw.objective.goal, summary: raw.objective.summary ?? 'last' },
    parameters,
    maxTrials: raw.max_trials ?? (raw.method === 'grid' ? gridSize(parameters) : 0),
    parallel: raw.parallel ?? 1,
    seed: raw.seed ?? 0,
    maxAttempts: raw.max_attempts ?? 1,
    earlyTerminate,
    bayes: {
      startupTrials: raw.bayes?.startup_trials ?? 10,
      candidates: raw.bayes?.candidates ?? TPE_DEFAULTS.candidates,
      gamma: raw.bayes?.gamma ?? TPE_DEFAULTS.gamma,
      priorWeight: raw.bayes?.prior_weight ?? TPE_DEFAULTS.priorWeight,
    },
  };
  return { spec, base, locate };
}

type Fail = (path: ConfigPath, init: { message?: string; expected?: string; found?: string; hint?: string }, key?: boolean) => void;

function toParameter(path: string, p: SweepFile['parameters'][string], fail: Fail): Parameter {
  const at = ['parameters', path];
  const type = p.distribution ?? 'categorical';
  if (type === 'categorical') {
    if (p.min !== undefined || p.max !== undefined) fail([...at, p.min !== undefined ? 'min' : 'max'], { message: 'min and max belong to uniform, log_uniform and int_uniform; a categorical parameter lists its values' }, true);
    return { path, distribution: { type, values: p.values! } };
  }
  if (p.values !== undefined) fail([...at, 'values'], { message: `values belong to categorical parameters; a ${type} parameter has min and max` }, true);
  const [min, max] = [p.min!, p.max!];
  if (!(min < max)) fail([...at, 'max'], { expected: `a value > min (${min})`, found: describeValue(max) });
  if (type === 'log_uniform' && min <= 0) fail([...at, 'min'], { expected: 'a value > 0 (log_uniform works in log space)', found: describeValue(min) });
  if (type === 'int_uniform') {
    for (const [key, value] of [['min', min], ['max', max]] as const) {
      if (!Number.isInteger(value)) fail([...at, key], { expected: 'an integer (int_uniform)', found: describeValue(value) });
    }
  }
  return { path, distribution: { type, min, max } };
}

/** A parameter path must name an existing scalar of the base experiment. */
function checkPath(path: string, base: LoadedConfig, fail: (init: { message: string; hint?: string }) => void): void {
  let segments: (string | number)[];
  try {
    // The same key syntax as `--set` (a.b.c, a.b[2].c), parsed by the same code.
    segments = parseOverride(`${path}=null`).path;
  } catch (error) {
    if (isConfigError(error) && !(error instanceof ConfigErrors)) return fail({ message: error.detail, ...(error.hint ? { hint: error.hint } : {}) });
    throw error;
  }
  const experiment = relative(process.cwd(), base.file) || base.file;
  let value: unknown = base.config;
  for (let depth = 0; depth < segments.length; depth++) {
    const segment = segments[depth]!;
    const here = segments.slice(0, depth);
    if (Array.isArray(value)) {
      if (typeof segment !== 'number' || segment >= value.length) {
        return fail({ message: `${formatPath(here)} in ${experiment} is a list of ${value.length}; "${segment}" is not an index of it` });
      }
      value = value[segment];
      continue;
    }
    if (!isPlainObject(value) || !Object.hasOwn(value, String(segment))) {
      const siblings = isPlainObject(value) ? Object.keys(value) : [];
      const guess = didYouMean(String(segment), siblings);
      return fail({
        message: `${path} does not exist in ${experiment}` + (isPlainObject(value) ? '' : ` (${formatPath(here)} is ${describeValue(value)})`),
        ...(guess ? { hint: `did you mean "${formatPath([...here, guess]).replace(/\[(\d+)\]/g, '.$1')}"?` } : siblings.length > 0 ? { hint: `${formatPath(here) || 'the top level'} has: ${siblings.join(', ')}` } : {}),
      });
    }
    value = value[String(segment)];
  }
  if (value !== null && typeof value === 'object') {
    fail({ message: `${path} in ${experiment} is ${describeValue(value)}; a sweep sets scalar values (a key inside it)` });
  }
}

/** Builds the experiment with each extreme value of the parameter and validates it. */
function checkValues(p: Parameter, experiment: string, baseOverrides: readonly string[], registries: Registries, fail: Fail): void {
  const d = p.distribution;
  const probes: ParamValue[] = d.type === 'categorical' ? [...d.values] : [d.min, d.max];
  for (const value of probes) {
    const argument = `${p.path}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;
    try {
      loadValidatedExperiment(experiment, registries, { overrides: [...baseOverrides, argument] });
    } catch (error) {
      if (!isConfigError(error)) throw error;
      const first = error instanceof ConfigErrors ? error.errors[0]! : error;
      const where = first.path.length > 0 ? `${formatPath(first.path)}: ` : '';
      fail(['parameters', p.path], { message: `${p.path}=${String(value)} makes an invalid experiment: ${where}${first.detail}` }, true);
      return;
    }
  }
}

function toEarlyTerminate(raw: SweepFile['early_terminate'], maxEpochs: unknown, fail: Fail): EarlyTerminate | null {
  if (!raw) return null;
  if (raw.type === 'median') return { type: 'median', minEpochs: raw.min_epochs ?? 1, minTrials: raw.min_trials ?? 3 };
  if (typeof maxEpochs !== 'number' || !Number.isInteger(maxEpochs) || maxEpochs < 1) {
    fail(['early_terminate'], { message: `${raw.type} needs max_epochs (the base experiment has no train.epochs)` });
    return null;
  }
  const gracePeriod = raw.grace_period ?? 1;
  const reductionFactor = raw.reduction_factor ?? 3;
  if (gracePeriod >= maxEpochs) {
    fail(['early_terminate', 'grace_period'], { expected: `a value < max_epochs (${maxEpochs}), or no rung is ever reached`, found: describeValue(gracePeriod) });
  }
  if (raw.type === 'asha') return { type: 'asha', gracePeriod, reductionFactor, maxEpochs };
  return { type: 'hyperband', gracePeriod, reductionFactor, maxEpochs, brackets: raw.brackets ?? defaultBrackets(gracePeriod, reductionFactor, maxEpochs) };
}

function nearbyFile(target: string): string | undefined {
  const dir = dirname(target);
  if (!existsSync(dir)) return undefined;
  const hint = didYouMean(basename(target), readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)));
  return hint ? `did you mean "${relative(process.cwd(), resolve(dir, hint))}"?` : undefined;
}
