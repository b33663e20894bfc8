import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors, configErrorsOf, isConfigError } from '@tessera/core';
import { loadSweep } from './load.ts';

const repo = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'tessera-sweep-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(
  join(dir, 'base.yaml'),
  ['name: toy', 'model:', '  vars: {width: 8}', '  layers:', '    - {type: dense, units: 4}', 'train:', '  epochs: 27', '  optimizer: {type: adamw, learning_rate: 0.01}', ''].join('\n'),
);

function sweepFile(name: string, lines: string[]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** The rendered errors of loading a sweep file, relative to the temp dir. */
function errorsOf(file: string): string[] {
  try {
    loadSweep(file);
  } catch (error) {
    if (!isConfigError(error)) throw error;
    return configErrorsOf(error as ConfigError | ConfigErrors).map((e) => e.render(dir));
  }
  throw new Error('expected the sweep to be rejected');
}

const header = ['experiment: base.yaml', 'objective: {metric: val_accuracy, goal: maximize}'];

describe('loadSweep: the bundled sweeps', () => {
  it('reads experiments/sweeps/fnet-lr.yaml into a bayes search with ASHA', () => {
    const { spec } = loadSweep(join(repo, 'experiments/sweeps/fnet-lr.yaml'));
    expect(spec).toMatchObject({
      name: 'fnet-lr',
      experiment: join(repo, 'experiments/fnet.yaml'),
      method: 'bayes',
      objective: { metric: 'val_accuracy', goal: 'maximize', summary: 'last' },
      maxTrials: 40,
      parallel: 1,
      seed: 0,
      maxAttempts: 1,
      // max_epochs comes from the experiment's train.epochs (50, from base/train... via fnet.yaml).
      earlyTerminate: { type: 'asha', gracePeriod: 1, reductionFactor: 3, maxEpochs: 50 },
      bayes: { startupTrials: 10, candidates: 24, gamma: 0.25, priorWeight: 1 },
    });
    expect(spec.parameters).toEqual([
      { path: 'train.optimizer.learning_rate', distribution: { type: 'log_uniform', min: 1e-4, max: 1e-2 } },
      { path: 'train.optimizer.weight_decay', distribution: { type: 'log_uniform', min: 1e-6, max: 1e-2 } },
      { path: 'model.vars.embedding_dim', distribution: { type: 'categorical', values: [128, 256, 512] } },
    ]);
  });

  it('reads experiments/sweeps/smoke-grid.yaml into a 4-trial grid, 2 at a time', () => {
    const { spec } = loadSweep(join(repo, 'experiments/sweeps/smoke-grid.yaml'));
    expect(spec.method).toBe('grid');
    expect(spec.maxTrials).toBe(4);
    expect(spec.parallel).toBe(2);
    expect(spec.experiment).toBe(join(repo, 'experiments/smoke.yaml'));
    expect(spec.parameters.map((p) => p.path)).toEqual(['train.optimizer.learning_rate', 'model.layers.1.units']);
  });
});

describe('loadSweep: sweep-wide overrides', () => {
  it('applies them to the base experiment first: a shorter sweep has earlier ASHA rungs to the end', () => {
    const { spec, base } = loadSweep(join(repo, 'experiments/sweeps/fnet-lr.yaml'), { overrides: ['train.epochs=9'] });
    expect(spec.baseOverrides).toEqual(['train.epochs=9']);
    expect(spec.earlyTerminate).toMatchObject({ type: 'asha', maxEpochs: 9 });
    expect((base.config.train as { epochs: number }).epochs).toBe(9);
  });
});

describe('loadSweep: defaults', () => {
  it('fills name, seed, parallel and hyperband brackets', () => {
    const file = sweepFile('defaults', [
      ...header,
      'method: random',
      'max_trials: 5',
      'parameters:',
      '  train.optimizer.learning_rate: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}',
      'early_terminate: {type: hyperband}',
    ]);
    const { spec } = loadSweep(file);
    expect(spec.name).toBe('defaults');
    expect(spec.seed).toBe(0);
    expect(spec.parallel).toBe(1);
    // 27 epochs, eta 3: s_max = 3, four brackets.
    expect(spec.earlyTerminate).toEqual({ type: 'hyperband', gracePeriod: 1, reductionFactor: 3, maxEpochs: 27, brackets: 4 });
  });
});

describe('loadSweep: the default name', () => {
  it('is the file name, which must be a name (the one path check): a located error otherwise', () => {
    const lines = [...header, 'method: grid', 'parameters:', '  train.optimizer.learning_rate: {values: [0.01]}'];
    expect(errorsOf(sweepFile('.hidden', lines))).toEqual([
      '.hidden.yaml:1:1 the file name ".hidden.yaml" cannot name the sweep: it starts with "."; add name: with letters, digits, _ . -',
    ]);
    expect(loadSweep(sweepFile('.named', ['name: visible', ...lines])).spec.name).toBe('visible');
  });
});

describe('loadSweep: located errors', () => {
  const cases: { name: string; lines: string[]; expected: string[] }[] = [
    {
      name: 'unknown-key',
      lines: [...header, 'method: grid', 'max_trail: 3', 'parameters:', '  train.epochs: {values: [1, 2]}'],
      expected: ['unknown-key.yaml:4:1 max_trail: unknown key "max_trail"; did you mean "max_trials"?'],
    },
    {
      name: 'bad-method',
      lines: [...header, 'method: bayesian', 'parameters:', '  train.epochs: {values: [1, 2]}'],
      expected: ['bad-method.yaml:3:9 method: expected one of "grid", "random", "bayes", got string "bayesian"'],
    },
    {
      name: 'missing-path',
      lines: [...header, 'method: grid', 'parameters:', '  train.optimizer.learning_rat: {values: [0.1]}'],
      expected: [
        'missing-path.yaml:5:3 parameters["train.optimizer.learning_rat"]: train.optimizer.learning_rat does not exist in',
        'did you mean "train.optimizer.learning_rate"?',
      ],
    },
    {
      name: 'path-through-list',
      lines: [...header, 'method: grid', 'parameters:', '  model.layers.3.units: {values: [8]}'],
      expected: ['path-through-list.yaml:5:3', 'model.layers in', 'is a list of 1; "3" is not an index of it'],
    },
    {
      name: 'not-a-scalar',
      lines: [...header, 'method: grid', 'parameters:', '  train.optimizer: {values: [sgd]}'],
      expected: ['not-a-scalar.yaml:5:3', 'train.optimizer in', 'is a mapping; a sweep sets scalar values'],
    },
    {
      name: 'grid-continuous',
      lines: [...header, 'method: grid', 'parameters:', '  train.optimizer.learning_rate: {distribution: uniform, min: 0, max: 1}'],
      expected: ['grid-continuous.yaml:5:3', 'grid search cannot enumerate a uniform distribution; give it values: [...]'],
    },
    {
      name: 'bounds',
      lines: [...header, 'method: random', 'max_trials: 3', 'parameters:', '  train.optimizer.learning_rate: {distribution: log_uniform_values, min: 0, max: 0}'],
      expected: [
        'bounds.yaml:6:74 parameters["train.optimizer.learning_rate"].min: expected a value > 0 (log_uniform_values works in log space), got 0',
        'bounds.yaml:6:82 parameters["train.optimizer.learning_rate"].max: expected a value > min (0), got 0',
      ],
    },
    {
      name: 'no-budget',
      lines: [...header, 'method: bayes', 'parameters:', '  train.optimizer.learning_rate: {distribution: log_uniform_values, min: 1.0e-4, max: 1}'],
      expected: ['no-budget.yaml:1:1 missing required key "run_cap": a bayes search needs a budget'],
    },
    {
      name: 'missing-min',
      lines: [...header, 'method: random', 'max_trials: 2', 'parameters:', '  train.epochs: {distribution: int_uniform, max: 3}'],
      expected: ['missing-min.yaml:6:17 parameters["train.epochs"]: missing required key "min" (an int_uniform parameter takes min and max)'],
    },
    {
      name: 'bad-rule-key',
      lines: [...header, 'method: grid', 'parameters:', '  train.epochs: {values: [1, 2]}', 'early_terminate: {type: asha, grace: 2}'],
      expected: ['bad-rule-key.yaml:6:31 early_terminate.grace: unknown key "grace"; valid keys: type, grace_period, reduction_factor, max_epochs'],
    },
    {
      name: 'missing-experiment',
      lines: ['experiment: bsae.yaml', 'objective: {metric: val_accuracy, goal: maximize}', 'method: grid', 'parameters:', '  x: {values: [1]}'],
      expected: ['missing-experiment.yaml:1:13 experiment: experiment file "bsae.yaml" not found', 'did you mean'],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const rendered = errorsOf(sweepFile(c.name, c.lines)).join('\n');
      for (const part of c.expected) expect(rendered).toContain(part);
    });
  }
});
