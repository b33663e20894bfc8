import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configErrorsOf, isConfigError, type ConfigError, type ConfigErrors } from '@tessera/core';
import { gridSize } from './grid.ts';
import { loadSweep } from './load.ts';
import { deriveSeed, Rng } from '@tessera/core';
import { sample, type Distribution } from './space.ts';

/*
 * Sweep files in W&B's own form (docs.wandb.ai, "Define a sweep configuration" and "Sweep
 * configuration options"): the same keys, with parameter names that are paths into a Tessera
 * experiment. W&B's program/command are noted and ignored; everything else means what it means there.
 */
const dir = mkdtempSync(join(tmpdir(), 'tessera-wandb-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(
  join(dir, 'base.yaml'),
  [
    'name: toy',
    'model:',
    '  vars: {width: 8}',
    '  layers:',
    '    - {type: dense, units: 4}',
    'train:',
    '  epochs: 27',
    '  batch_size: 32',
    '  optimizer: {type: adamw, learning_rate: 0.01, weight_decay: 0.0001}',
    '  metrics: [accuracy]',
    '',
  ].join('\n'),
);

function sweep(name: string, text: string) {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `experiment: base.yaml\n${text}`);
  return loadSweep(file);
}

function errorsOf(name: string, text: string): string[] {
  try {
    sweep(name, text);
  } catch (error) {
    if (!isConfigError(error)) throw error;
    return configErrorsOf(error as ConfigError | ConfigErrors).map((e) => e.render(dir));
  }
  throw new Error('expected the sweep to be rejected');
}

describe('W&B sweep files', () => {
  it('grid: metric {name, goal}, values, value, nested parameters; program and command are noted and ignored', () => {
    const { spec, notes } = sweep(
      'grid',
      `program: train.py
command: [\${env}, python, \${program}, \${args}]
method: grid
metric:
  goal: minimize
  name: val_loss
parameters:
  train:
    parameters:
      batch_size: {values: [16, 32, 64]}
      epochs: {value: 5}
      optimizer:
        parameters:
          learning_rate: {values: [0.001, 0.01]}
`,
    );
    expect(spec.method).toBe('grid');
    expect(spec.objective).toEqual({ metric: 'val_loss', goal: 'minimize', summary: 'last' });
    expect(spec.parameters).toEqual([
      { path: 'train.batch_size', distribution: { type: 'categorical', values: [16, 32, 64] } },
      { path: 'train.epochs', distribution: { type: 'categorical', values: [5] } },
      { path: 'train.optimizer.learning_rate', distribution: { type: 'categorical', values: [0.001, 0.01] } },
    ]);
    expect(spec.maxTrials).toBe(gridSize(spec.parameters));
    expect(spec.maxTrials).toBe(6);
    expect(notes).toEqual([
      'program (W&B) is ignored: each trial is `exp run base.yaml` with the trial\'s values as --set overrides',
      'command (W&B) is ignored: each trial is `exp run base.yaml` with the trial\'s values as --set overrides',
    ]);
  });

  it('grid enumerates q_uniform and int_uniform; metric goal defaults to minimize as in W&B', () => {
    const { spec } = sweep(
      'grid-q',
      `method: grid
metric: {name: val_accuracy}
parameters:
  train.optimizer.weight_decay: {distribution: q_uniform, min: 0, max: 0.3, q: 0.1}
  model.vars.width: {distribution: int_uniform, min: 4, max: 6}
`,
    );
    expect(spec.objective.goal).toBe('minimize');
    expect(spec.maxTrials).toBe(12);
  });

  it('random with each W&B distribution: draws fall where W&B says', () => {
    const { spec } = sweep(
      'random',
      `method: random
metric: {name: val_accuracy, goal: maximize}
run_cap: 20
parameters:
  model.vars.width: {value: 8}
  train.optimizer.type: {values: [adamw, adam], probabilities: [0.9, 0.1]}
  train.batch_size: {distribution: int_uniform, min: 16, max: 64}
  train.optimizer.weight_decay: {distribution: uniform, min: 0, max: 0.1}
  train.epochs: {distribution: q_uniform, min: 1, max: 20, q: 5}
  train.optimizer.learning_rate: {distribution: log_uniform, min: -9.21, max: -4.61}
  model.layers.0.units: {distribution: q_log_uniform_values, min: 16, max: 512, q: 16}
`,
    );
    expect(spec.maxTrials).toBe(20);
    const byPath = Object.fromEntries(spec.parameters.map((p) => [p.path, p.distribution]));
    // log_uniform: min and max are natural-log exponents, e^-9.21 = 1.0e-4 .. e^-4.61 = 1.0e-2.
    expect(byPath['train.optimizer.learning_rate']).toMatchObject({ type: 'log_uniform' });
    const lr = byPath['train.optimizer.learning_rate'] as { min: number; max: number };
    expect(lr.min).toBeCloseTo(1.0e-4, 6);
    expect(lr.max).toBeCloseTo(0.00995, 5);
    expect(byPath['model.vars.width']).toEqual({ type: 'categorical', values: [8] });
    expect(byPath['train.optimizer.type']).toEqual({ type: 'categorical', values: ['adamw', 'adam'], probabilities: [0.9, 0.1] });
    expect(byPath['train.epochs']).toEqual({ type: 'uniform', min: 1, max: 20, q: 5 });
    expect(byPath['model.layers.0.units']).toEqual({ type: 'log_uniform', min: 16, max: 512, q: 16 });
  });

  const draws = (d: Distribution, n = 4000) => Array.from({ length: n }, (_, i) => sample(d, new Rng(deriveSeed(7, i))) as number);

  it('the distributions themselves: ranges, quantization, log spacing, moments', () => {
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

    // q_uniform: multiples of q inside [min, max] (W&B: round(X / q) * q).
    const q = draws({ type: 'uniform', min: 1, max: 20, q: 5 });
    expect(new Set(q)).toEqual(new Set([0, 5, 10, 15, 20]));
    // log_uniform over values: each decade as likely; the median is the geometric mean (1e-3).
    const lr = draws({ type: 'log_uniform', min: 1e-4, max: 1e-2 });
    expect(Math.min(...lr)).toBeGreaterThanOrEqual(1e-4);
    expect(Math.max(...lr)).toBeLessThanOrEqual(1e-2);
    expect(Math.log10(median(lr))).toBeCloseTo(-3, 1);
    // q_log_uniform_values: multiples of q.
    expect(draws({ type: 'log_uniform', min: 16, max: 512, q: 16 }).every((x) => x % 16 === 0)).toBe(true);
    // normal(mu, sigma) and log_normal: exp of a normal.
    const n = draws({ type: 'normal', mu: 3, sigma: 2 });
    expect(mean(n)).toBeCloseTo(3, 0);
    expect(sd(n)).toBeCloseTo(2, 0);
    const ln = draws({ type: 'log_normal', mu: 0, sigma: 0.5 });
    expect(Math.log(median(ln))).toBeCloseTo(0, 1);
    expect(draws({ type: 'normal', mu: 0, sigma: 10, q: 2 }).every((x) => Math.abs(x % 2) === 0)).toBe(true);
    // Weighted categorical values.
    const picks = Array.from({ length: 4000 }, (_, i) => sample({ type: 'categorical', values: ['a', 'b'], probabilities: [0.9, 0.1] }, new Rng(deriveSeed(3, i))));
    expect(picks.filter((p) => p === 'a').length / picks.length).toBeCloseTo(0.9, 1);
  });

  it('inv_log_uniform(_values), q_normal, log_normal, q_log_normal and q_log_uniform load for random', () => {
    const { spec } = sweep(
      'random-rest',
      `method: random
metric: {name: val_loss, goal: minimize}
run_cap: 3
parameters:
  train.optimizer.learning_rate: {distribution: inv_log_uniform_values, min: 1.0e-4, max: 1.0e-2}
  train.optimizer.weight_decay: {distribution: inv_log_uniform, min: 4.61, max: 9.21}
  train.batch_size: {distribution: q_normal, mu: 32, sigma: 8, q: 8}
  model.vars.width: {distribution: q_log_normal, mu: 3, sigma: 0.5, q: 2}
  train.epochs: {distribution: q_log_uniform, min: 0, max: 3}
  model.layers.0.units: {distribution: log_normal, mu: 3, sigma: 0.3}
`,
    );
    const byPath = Object.fromEntries(spec.parameters.map((p) => [p.path, p.distribution]));
    expect(byPath['train.optimizer.learning_rate']).toEqual({ type: 'log_uniform', min: 1e-4, max: 1e-2 });
    // inv_log_uniform: log(1/X) uniform in [4.61, 9.21], so X in [e^-9.21, e^-4.61].
    const wd = byPath['train.optimizer.weight_decay'] as { min: number; max: number };
    expect(wd.min).toBeCloseTo(1.0e-4, 6);
    expect(wd.max).toBeCloseTo(0.00995, 5);
    expect(byPath['train.batch_size']).toEqual({ type: 'normal', mu: 32, sigma: 8, q: 8 });
    expect(byPath['model.vars.width']).toEqual({ type: 'log_normal', mu: 3, sigma: 0.5, q: 2 });
    expect(byPath['train.epochs']).toMatchObject({ type: 'log_uniform', min: 1, q: 1 });
    expect(byPath['model.layers.0.units']).toEqual({ type: 'log_normal', mu: 3, sigma: 0.3 });
  });

  it('bayes with hyperband in W&B\u2019s keys (min_iter, eta, s)', () => {
    const { spec } = sweep(
      'bayes',
      `method: bayes
metric: {name: val_loss, goal: minimize}
run_cap: 30
parameters:
  train.optimizer.learning_rate: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-1}
  train.batch_size: {values: [16, 32, 64]}
early_terminate:
  type: hyperband
  min_iter: 3
  eta: 2
`,
    );
    expect(spec.method).toBe('bayes');
    expect(spec.maxTrials).toBe(30);
    // 27 epochs (train.epochs), rungs from 3 with eta 2: floor(log2(27 / 3)) + 1 = 4 brackets.
    expect(spec.earlyTerminate).toEqual({ type: 'hyperband', gracePeriod: 3, reductionFactor: 2, maxEpochs: 27, brackets: 4 });
    const withS = sweep('bayes-s', `method: bayes\nmetric: {name: val_loss}\nrun_cap: 5\nparameters:\n  train.batch_size: {values: [16, 32]}\nearly_terminate: {type: hyperband, min_iter: 1, max_iter: 9, eta: 3, s: 2}\n`);
    expect(withS.spec.earlyTerminate).toEqual({ type: 'hyperband', gracePeriod: 1, reductionFactor: 3, maxEpochs: 9, brackets: 2 });
  });

  it('Tessera\u2019s earlier keys still work (objective, max_trials); both spellings at once is an error', () => {
    const { spec } = sweep('old', 'method: random\nobjective: {metric: val_accuracy, goal: maximize}\nmax_trials: 4\nparameters:\n  train.batch_size: {values: [16, 32]}\n');
    expect(spec.objective).toEqual({ metric: 'val_accuracy', goal: 'maximize', summary: 'last' });
    expect(spec.maxTrials).toBe(4);
    expect(errorsOf('both', 'method: random\nmetric: {name: val_loss}\nrun_cap: 4\nmax_trials: 4\nparameters:\n  train.batch_size: {values: [16, 32]}\n')).toEqual([
      'both.yaml:5:1 max_trials: max_trials and run_cap say the same thing (run_cap is W&B\'s name, max_trials Tessera\'s earlier one); keep run_cap',
    ]);
  });

  it('log_uniform with value bounds (Tessera\u2019s earlier meaning) is a located error that says what to write', () => {
    const [error] = errorsOf('old-log', 'method: random\nmetric: {name: val_loss}\nrun_cap: 4\nparameters:\n  train.optimizer.learning_rate: {distribution: log_uniform, min: 1.0e-4, max: 1.0e-2}\n');
    expect(error).toContain('old-log.yaml:6:35 parameters["train.optimizer.learning_rate"].distribution: log_uniform takes exponents, as in W&B');
    expect(error).toContain('write distribution: log_uniform_values');
    expect(error).toContain('min: -9.210, max: -4.605');
  });

  it('a typo in the metric name fails before any trial, located, with a did-you-mean over what the trials report', () => {
    const [error] = errorsOf('typo', 'method: grid\nmetric: {name: val_los, goal: minimize}\nparameters:\n  train.batch_size: {values: [16, 32]}\n');
    expect(error).toContain('typo.yaml:3:16 metric.name: "val_los" is not a metric the trials report each epoch');
    expect(error).toContain('did you mean "val_loss"?');
    expect(error).toContain('they report: loss, accuracy, val_loss, val_accuracy, learning_rate, images_per_second, epoch_time');
  });

  it('bayes refuses unbounded distributions; grid refuses continuous ones', () => {
    expect(errorsOf('bayes-normal', 'method: bayes\nmetric: {name: val_loss}\nrun_cap: 4\nparameters:\n  train.batch_size: {distribution: normal, mu: 32, sigma: 4}\n')[0]).toContain(
      'bayes (TPE) needs a bounded range; normal has none',
    );
    expect(errorsOf('grid-uniform', 'method: grid\nmetric: {name: val_loss}\nparameters:\n  train.optimizer.weight_decay: {min: 0.0, max: 0.1}\n')[0]).toContain(
      'grid search cannot enumerate a uniform distribution',
    );
  });
});
