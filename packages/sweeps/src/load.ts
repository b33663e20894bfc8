import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, relative, resolve } from 'node:path';
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
  type Registries,
  type SourceLocation,
  didYouMean,
  validateDocument,
  loadValidatedExperiment,
  unsafeNameReason,
} from '@tessera/core';
import { defaultBrackets, type EarlyTerminate } from './early-stop.ts';
import { gridSize } from './grid.ts';
import { sweepSchema, WANDB_DISTRIBUTIONS } from './schema.ts';
import type { Distribution, Parameter, ParamValue } from './space.ts';
import { epochMetricNames } from '@tessera/core';
import type { SweepSpec } from './spec.ts';
import { TPE_DEFAULTS } from './tpe.ts';

/** A sweep file as written (after schema validation). */
interface SweepFile {
  name?: string;
  description?: string;
  experiment: string;
  method: SweepSpec['method'];
  /** W&B's key; `objective` is Tessera's earlier one. */
  metric?: { name: string; goal?: 'maximize' | 'minimize'; target?: number; summary?: 'last' | 'best' };
  objective?: { metric: string; goal: 'maximize' | 'minimize'; summary?: 'last' | 'best' };
  parameters: Record<string, RawParameter>;
  run_cap?: number;
  max_trials?: number;
  program?: unknown;
  command?: unknown;
  project?: string;
  entity?: string;
  parallel?: number;
  seed?: number;
  max_attempts?: number;
  early_terminate?: {
    type: EarlyTerminate['type'];
    min_epochs?: number;
    min_trials?: number;
    grace_period?: number;
    reduction_factor?: number;
    max_epochs?: number;
    brackets?: number;
    // W&B's hyperband keys.
    min_iter?: number;
    max_iter?: number;
    eta?: number;
    s?: number;
    strict?: boolean;
  };
  bayes?: { startup_trials?: number; candidates?: number; gamma?: number; prior_weight?: number };
}

/** One parameter as written: W&B's keys (schema.ts). */
interface RawParameter {
  distribution?: (typeof WANDB_DISTRIBUTIONS)[number];
  min?: number;
  max?: number;
  values?: ParamValue[];
  value?: ParamValue;
  probabilities?: number[];
  q?: number;
  mu?: number;
  sigma?: number;
  parameters?: Record<string, RawParameter>;
}

export interface LoadedSweep {
  spec: SweepSpec;
  /** Things the file says that Tessera does not use (W&B's program, command, project, entity), for the user. */
  notes: string[];
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

/** The sweep file's schema (one object, so core compiles it once). */
let schema: ReturnType<typeof sweepSchema> | undefined;

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

  validateDocument((schema ??= sweepSchema()), located);
  const raw = parsed.value as unknown as SweepFile;
  const errors: ConfigError[] = [];
  const fail = (path: ConfigPath, init: { message?: string; expected?: string; found?: string; hint?: string }, key = false): void => {
    errors.push(new ConfigError({ location: key ? locateKey(path) : locate(path), path, ...init }));
  };

  // W&B's keys and Tessera's earlier ones (objective, max_trials): one or the other.
  const notes: string[] = [];
  for (const [wandb, own] of [['metric', 'objective'], ['run_cap', 'max_trials']] as const) {
    if (raw[wandb] !== undefined && raw[own] !== undefined) fail([own], { message: `${own} and ${wandb} say the same thing (${wandb} is W&B's name, ${own} Tessera's earlier one); keep ${wandb}` }, true);
  }
  if (!raw.metric && !raw.objective) fail([], { message: 'missing required key "metric"', hint: 'e.g. metric: {name: val_loss, goal: minimize}' });
  // The default name is the file's; it names a directory of the run store, so it must be a name (the one path check).
  const unsafe = raw.name === undefined ? unsafeNameReason(basename(absolute, extname(absolute))) : undefined;
  if (unsafe) fail([], { message: `the file name "${basename(absolute)}" cannot name the sweep: ${unsafe}`, hint: 'add name: with letters, digits, _ . -' });
  for (const key of ['program', 'command', 'project', 'entity'] as const) {
    if (raw[key] === undefined) continue;
    notes.push(
      key === 'program' || key === 'command'
        ? `${key} (W&B) is ignored: each trial is \`exp run ${raw.experiment}\` with the trial's values as --set overrides`
        : `${key} (W&B) is ignored: runs go to the MLflow experiment of the experiment's tracking section`,
    );
  }
  const runCap = raw.run_cap ?? raw.max_trials;
  const objective = raw.metric
    ? { metric: raw.metric.name, goal: raw.metric.goal ?? ('minimize' as const), summary: raw.metric.summary ?? ('last' as const) }
    : { metric: raw.objective?.metric ?? '', goal: raw.objective?.goal ?? ('minimize' as const), summary: raw.objective?.summary ?? ('last' as const) };
  const objectivePath: ConfigPath = raw.metric ? ['metric', 'name'] : ['objective', 'metric'];

  const parameters = flattenParameters(raw.parameters, [], fail);
  for (const p of parameters) {
    const where = p.yamlPath;
    const d = p.distribution;
    if (raw.method === 'grid' && !(d.type === 'categorical' || d.type === 'int_uniform' || (d.type === 'uniform' && d.q !== undefined))) {
      fail(where, { message: `grid search cannot enumerate a ${p.written} distribution`, hint: 'give it values: [...] (or int_uniform / q_uniform bounds)' }, true);
    }
    if (raw.method === 'bayes' && (d.type === 'normal' || d.type === 'log_normal')) {
      fail(where, { message: `bayes (TPE) needs a bounded range; ${p.written} has none`, hint: 'use uniform or log_uniform_values with min and max, or method: random' }, true);
    }
  }
  if (raw.method !== 'grid' && runCap === undefined) {
    fail([], { message: `missing required key "run_cap": a ${raw.method} search needs a budget` });
  }

  const experimentPath = resolve(dirname(absolute), raw.experiment);
  if (!existsSync(experimentPath) || statSync(experimentPath).isDirectory()) {
    fail(['experiment'], { message: `experiment file "${raw.experiment}" not found (looked for ${relative(process.cwd(), experimentPath)})`, hint: nearbyFile(experimentPath) });
  }
  throwIfAny(errors);

  const baseOverrides = [...(options.overrides ?? [])];
  const base = loadExperiment(experimentPath, { overrides: baseOverrides });
  if (options.registries) loadValidatedExperiment(experimentPath, options.registries, { overrides: baseOverrides });
  for (const p of parameters) checkPath(p.path, base, (init) => fail(p.yamlPath, init, true));
  checkObjective(objective.metric, base, objectivePath, fail);
  throwIfAny(errors);
  if (options.registries) for (const p of parameters) checkValues(p, experimentPath, baseOverrides, options.registries, (_path, init, key) => fail(p.yamlPath, init, key));
  throwIfAny(errors);

  const maxEpochs = raw.early_terminate?.max_epochs ?? raw.early_terminate?.max_iter ?? (base.config.train as { epochs?: unknown } | undefined)?.epochs;
  const earlyTerminate = toEarlyTerminate(raw.early_terminate, maxEpochs, fail);
  throwIfAny(errors);

  const spec: SweepSpec = {
    name: raw.name ?? basename(absolute, extname(absolute)),
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    file: absolute,
    experiment: experimentPath,
    baseOverrides,
    method: raw.method,
    objective,
    parameters: parameters.map(({ path, distribution }) => ({ path, distribution })),
    maxTrials: runCap ?? (raw.method === 'grid' ? gridSize(parameters) : 0),
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
  return { spec, base, locate, notes };
}

type Fail = (path: ConfigPath, init: { message?: string; expected?: string; found?: string; hint?: string }, key?: boolean) => void;

interface LoadedParameter extends Parameter {
  /** Where it is in the sweep file (nested parameters included), for errors. */
  yamlPath: ConfigPath;
  /** The distribution as the file names it (W&B's name), for messages. */
  written: string;
}

/** W&B's nested `parameters: {...}` become dotted paths: train: {parameters: {epochs: ...}} is train.epochs. */
function flattenParameters(raw: Record<string, RawParameter>, at: ConfigPath, fail: Fail, prefix = ''): LoadedParameter[] {
  const out: LoadedParameter[] = [];
  for (const [key, p] of Object.entries(raw)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const yamlPath = [...at, 'parameters', key];
    if (p.parameters) {
      const others = Object.keys(p).filter((k) => k !== 'parameters');
      if (others.length > 0) fail([...yamlPath, others[0]!], { message: `a parameter with nested parameters has no ${others[0]} of its own` }, true);
      out.push(...flattenParameters(p.parameters, yamlPath, fail, path));
    } else {
      out.push({ path, yamlPath, ...toDistribution(p, yamlPath, fail) });
    }
  }
  return out;
}

/**
 * W&B's distribution for one parameter, as one of Tessera's (space.ts). Without `distribution`,
 * W&B infers it: values -> categorical, value -> constant, integer min/max -> int_uniform, other
 * min/max -> uniform, mu/sigma -> normal.
 */
function toDistribution(p: RawParameter, at: ConfigPath, fail: Fail): { distribution: Distribution; written: string } {
  const inferred =
    p.distribution ??
    (p.values !== undefined ? 'categorical'
      : p.value !== undefined ? 'constant'
      : p.mu !== undefined || p.sigma !== undefined ? 'normal'
      : Number.isInteger(p.min) && Number.isInteger(p.max) ? 'int_uniform'
      : 'uniform');
  const written = inferred;
  const keysOf: Record<string, readonly string[]> = {
    constant: ['value'],
    categorical: ['values', 'probabilities'],
    int_uniform: ['min', 'max'],
    uniform: ['min', 'max'],
    log_uniform: ['min', 'max'],
    log_uniform_values: ['min', 'max'],
    inv_log_uniform: ['min', 'max'],
    inv_log_uniform_values: ['min', 'max'],
    normal: ['mu', 'sigma'],
    log_normal: ['mu', 'sigma'],
  };
  const quantized = inferred.startsWith('q_');
  const base = quantized ? inferred.slice(2) : inferred;
  const allowed = [...(keysOf[base] ?? []), 'distribution', ...(quantized ? ['q'] : [])];
  for (const key of Object.keys(p)) {
    if (!allowed.includes(key)) {
      fail([...at, key], { message: `${key} does not belong to ${article(written)} ${written} parameter (it takes ${allowed.filter((k) => k !== 'distribution').join(', ')})` }, true);
    }
  }
  const fallback: Distribution = { type: 'categorical', values: [0] };
  if (base === 'constant') return p.value === undefined ? (fail(at, { message: 'a constant parameter needs value: x' }, true), { distribution: fallback, written }) : { distribution: { type: 'categorical', values: [p.value] }, written };
  if (base === 'categorical') {
    if (p.values === undefined) return fail(at, { message: 'a categorical parameter needs values: [...]' }, true), { distribution: fallback, written };
    if (p.probabilities !== undefined) {
      if (p.probabilities.length !== p.values.length) fail([...at, 'probabilities'], { expected: `${p.values.length} weights, one per value`, found: `${p.probabilities.length}` });
      else if (Math.abs(p.probabilities.reduce((a, b) => a + b, 0) - 1) > 1e-6) fail([...at, 'probabilities'], { expected: 'weights that sum to 1 (as in W&B)', found: `a sum of ${p.probabilities.reduce((a, b) => a + b, 0)}` });
    }
    return { distribution: { type: 'categorical', values: p.values, ...(p.probabilities ? { probabilities: p.probabilities } : {}) }, written };
  }
  const q = quantized ? (p.q ?? 1) : undefined;
  if (base === 'normal' || base === 'log_normal') {
    return { distribution: { type: base, mu: p.mu ?? 0, sigma: p.sigma ?? 1, ...(q !== undefined ? { q } : {}) }, written };
  }
  if (p.min === undefined || p.max === undefined) {
    fail(at, { message: `missing required key "${p.min === undefined ? 'min' : 'max'}" (${article(written)} ${written} parameter takes min and max)` });
    return { distribution: fallback, written };
  }
  const [min, max] = [p.min, p.max];
  if ((base === 'log_uniform_values' || base === 'inv_log_uniform_values') && min <= 0) {
    fail([...at, 'min'], { expected: `a value > 0 (${written} works in log space)`, found: describeValue(min) });
  }
  if (!(min < max)) fail([...at, 'max'], { expected: `a value > min (${min})`, found: describeValue(max) });
  if (base === 'int_uniform') {
    for (const [key, value] of [['min', min], ['max', max]] as const) {
      if (!Number.isInteger(value)) fail([...at, key], { expected: 'an integer (int_uniform)', found: describeValue(value) });
    }
    return { distribution: { type: 'int_uniform', min, max }, written };
  }
  if (base === 'uniform') return { distribution: { type: 'uniform', min, max, ...(q !== undefined ? { q } : {}) }, written };
  if (base === 'log_uniform_values' || base === 'inv_log_uniform_values') {
    // 1/X of a log-uniform X on [a, b] is log-uniform on [1/b, 1/a]: both draw X log-uniformly between min and max.
    return { distribution: { type: 'log_uniform', min, max, ...(q !== undefined ? { q } : {}) }, written };
  }
  // log_uniform and inv_log_uniform: W&B's min and max are natural-log exponents.
  if (base === 'log_uniform' && min > 0 && max <= 1) {
    // Tessera's earlier log_uniform took values; read that way, 1e-4..1e-2 would silently mean e^0.0001..e^0.01.
    fail([...at, 'distribution'], {
      message: `log_uniform takes exponents, as in W&B: min ${min} and max ${max} mean values between e^${min} = ${Math.exp(min).toPrecision(4)} and e^${max} = ${Math.exp(max).toPrecision(4)}`,
      hint: `for values between ${min} and ${max} write distribution: log_uniform_values (Tessera's earlier log_uniform), or give exponents: min: ${Math.log(min).toFixed(3)}, max: ${Math.log(max).toFixed(3)}`,
    }, true);
  }
  const [lo, hi] = base === 'log_uniform' ? [Math.exp(min), Math.exp(max)] : [Math.exp(-max), Math.exp(-min)];
  return { distribution: { type: 'log_uniform', min: lo, max: hi, ...(q !== undefined ? { q } : {}) }, written };
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}

/**
 * The objective must be a metric every trial reports per epoch; a typo fails here, located, with
 * a did-you-mean, rather than as trials whose result is missing.
 */
function checkObjective(metric: string, base: LoadedConfig, at: ConfigPath, fail: Fail): void {
  const names = epochMetricNames(base.config.train as { metrics?: string[] } | undefined);
  if (names.includes(metric)) return;
  const guess = didYouMean(metric, names);
  fail(at, {
    message: `"${metric}" is not a metric the trials report each epoch`,
    hint: `${guess ? `did you mean "${guess}"? ` : ''}they report: ${names.join(', ')}`,
  });
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
  const probes: ParamValue[] =
    d.type === 'categorical' ? [...d.values] : d.type === 'normal' ? [d.mu] : d.type === 'log_normal' ? [Math.exp(d.mu)] : [d.min, d.max];
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
  // W&B's hyperband keys name the same things.
  const gracePeriod = raw.grace_period ?? raw.min_iter ?? 1;
  const reductionFactor = raw.reduction_factor ?? raw.eta ?? 3;
  if (gracePeriod >= maxEpochs) {
    fail(['early_terminate', 'grace_period'], { expected: `a value < max_epochs (${maxEpochs}), or no rung is ever reached`, found: describeValue(gracePeriod) });
  }
  if (raw.type === 'asha') return { type: 'asha', gracePeriod, reductionFactor, maxEpochs };
  return { type: 'hyperband', gracePeriod, reductionFactor, maxEpochs, brackets: raw.brackets ?? raw.s ?? defaultBrackets(gracePeriod, reductionFactor, maxEpochs) };
}

function nearbyFile(target: string): string | undefined {
  const dir = dirname(target);
  if (!existsSync(dir)) return undefined;
  const hint = didYouMean(basename(target), readdirSync(dir).filter((name) => /\.ya?ml$/.test(name)));
  return hint ? `did you mean "${relative(process.cwd(), resolve(dir, hint))}"?` : undefined;
}
