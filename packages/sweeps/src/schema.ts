import type { JsonSchema } from '@tessera/core';

const positiveInteger = (description: string): JsonSchema => ({ type: 'integer', minimum: 1, description });
const scalar: JsonSchema = { type: ['number', 'string', 'boolean'] };

/** `{type: name, ...}` whose other keys depend on the type, without ajv's registry discriminator. */
function variants(tag: string, cases: Record<string, { description: string; properties: Record<string, JsonSchema>; required?: string[] }>): JsonSchema {
  return {
    type: 'object',
    required: [tag],
    properties: { [tag]: { enum: Object.keys(cases) } },
    allOf: Object.entries(cases).map(([name, c]) => ({
      if: { properties: { [tag]: { const: name } } },
      then: {
        type: 'object',
        description: c.description,
        properties: { [tag]: { const: name }, ...c.properties },
        required: c.required ?? [],
        additionalProperties: false,
      },
    })),
  };
}

/** W&B's distribution names (docs.wandb.ai, "Sweep configuration options"), all accepted. */
export const WANDB_DISTRIBUTIONS = [
  'constant',
  'categorical',
  'int_uniform',
  'uniform',
  'q_uniform',
  'log_uniform',
  'log_uniform_values',
  'q_log_uniform',
  'q_log_uniform_values',
  'inv_log_uniform',
  'inv_log_uniform_values',
  'normal',
  'q_normal',
  'log_normal',
  'q_log_normal',
] as const;

/**
 * One searched parameter, in W&B's words: `values: [...]` (grid, or a categorical choice),
 * `value: x` (a constant), `{distribution, min, max}` / `{distribution, mu, sigma}` with an
 * optional `q`, or `parameters: {...}` (nested: the keys join with dots). Which keys go with
 * which distribution is checked by loadSweep, with located messages.
 */
const parameter: JsonSchema = {
  type: 'object',
  description: 'values: [...], value: x, {distribution, min, max} or {distribution, mu, sigma} (W&B sweep keys), or nested parameters.',
  properties: {
    distribution: {
      enum: [...WANDB_DISTRIBUTIONS],
      description:
        'As in W&B. uniform | int_uniform (both ends) | log_uniform_values (log-uniform between min and max) | log_uniform (min and max are natural-log exponents: e^min..e^max) | ' +
        'q_* (rounded to a multiple of q) | inv_log_uniform(_values) | normal / log_normal (mu, sigma) | categorical | constant. Default: inferred from the keys.',
    },
    min: { type: 'number', description: 'Lower bound (log_uniform: an exponent).' },
    max: { type: 'number', description: 'Upper bound (inclusive for int_uniform; log_uniform: an exponent).' },
    values: { type: 'array', minItems: 1, uniqueItems: true, items: scalar, description: 'The choices, in grid order.' },
    value: { ...scalar, description: 'A constant: every trial gets it.' },
    probabilities: { type: 'array', minItems: 1, items: { type: 'number', minimum: 0 }, description: 'Weights of the values (random search).' },
    q: { type: 'number', exclusiveMinimum: 0, description: 'q_* distributions: round to a multiple of q (default 1).' },
    mu: { type: 'number', description: 'normal / log_normal: mean (default 0).' },
    sigma: { type: 'number', exclusiveMinimum: 0, description: 'normal / log_normal: standard deviation (default 1).' },
    parameters: { type: 'object', minProperties: 1, additionalProperties: { $ref: '#/definitions/parameter' }, description: 'Nested parameters: their keys join this one with a dot.' },
  },
  additionalProperties: false,
};

const earlyTerminate = variants('type', {
  median: {
    description: 'Median stopping rule: stop a trial whose best so far is worse than the median of the others\u2019 running averages.',
    properties: {
      min_epochs: positiveInteger('Never stop before this epoch (default 1).'),
      min_trials: positiveInteger('Other trials that must have reached the epoch first (default 3).'),
    },
  },
  asha: {
    description: 'Asynchronous successive halving: at rungs grace_period * reduction_factor^k keep the top 1/reduction_factor.',
    properties: {
      grace_period: positiveInteger('The first rung, in epochs (default 1).'),
      reduction_factor: { type: 'integer', minimum: 2, description: 'eta: keep the top 1/eta at each rung (default 3).' },
      max_epochs: positiveInteger('Epochs of a full trial (default: the experiment\u2019s train.epochs).'),
    },
  },
  hyperband: {
    description:
      'Hyperband as brackets of ASHA: bracket s starts its rungs at grace_period * eta^s; trial i joins bracket i mod brackets. ' +
      'W&B\u2019s keys: min_iter (= grace_period), max_iter (= max_epochs), eta (= reduction_factor), s (= brackets).',
    properties: {
      min_iter: positiveInteger('W&B: the first rung, in epochs (= grace_period).'),
      max_iter: positiveInteger('W&B: epochs of a full trial (= max_epochs).'),
      eta: { type: 'integer', minimum: 2, description: 'W&B: keep the top 1/eta at each rung (= reduction_factor, default 3).' },
      s: positiveInteger('W&B: number of brackets (= brackets).'),
      strict: { type: 'boolean', description: 'W&B: accepted; Tessera\u2019s rungs always compare with the trials that reached them.' },
      grace_period: positiveInteger('The first rung of the most aggressive bracket (default 1).'),
      reduction_factor: { type: 'integer', minimum: 2, description: 'eta (default 3).' },
      max_epochs: positiveInteger('Epochs of a full trial (default: the experiment\u2019s train.epochs).'),
      brackets: positiveInteger('Number of brackets (default: floor(log_eta(max_epochs / grace_period)) + 1).'),
    },
  },
});

/** The JSON Schema of a sweep file (`experiments/sweeps/*.yaml`), draft-07. */
export function sweepSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Tessera sweep',
    description: 'A hyperparameter search over one experiment file.',
    type: 'object',
    additionalProperties: false,
    required: ['experiment', 'method', 'parameters'],
    definitions: { parameter },
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'Default: the file name without extension.' },
      description: { type: 'string' },
      experiment: { type: 'string', minLength: 1, description: 'The base experiment file, relative to this file.' },
      method: { enum: ['grid', 'random', 'bayes'], description: 'grid (every combination) | random | bayes (TPE).' },
      metric: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        description: 'What the search optimises (W&B\u2019s key).',
        properties: {
          name: { type: 'string', minLength: 1, description: 'A per-epoch metric, e.g. val_accuracy or val_loss.' },
          goal: { enum: ['maximize', 'minimize'], description: 'Default minimize, as in W&B.' },
          target: { type: 'number', description: 'W&B: accepted and recorded; the sweep runs its whole budget.' },
          summary: { enum: ['last', 'best'], description: 'A trial\u2019s result: the last epoch\u2019s value (default) or its best.' },
        },
      },
      objective: {
        type: 'object',
        additionalProperties: false,
        required: ['metric', 'goal'],
        description: 'Tessera\u2019s earlier name for metric ({metric, goal, summary}); still accepted.',
        properties: {
          metric: { type: 'string', minLength: 1 },
          goal: { enum: ['maximize', 'minimize'] },
          summary: { enum: ['last', 'best'] },
        },
      },
      run_cap: positiveInteger('Trials to run (W&B\u2019s key; grid: default all of them; random and bayes: required).'),
      program: { description: 'W&B: the training script. Ignored with a note: Tessera runs the experiment file.' },
      command: { description: 'W&B: the training command line. Ignored with a note: Tessera runs exp run with --set overrides.' },
      project: { type: 'string', description: 'W&B: ignored with a note (the MLflow experiment comes from the experiment\u2019s tracking section).' },
      entity: { type: 'string', description: 'W&B: ignored with a note.' },
      parameters: {
        type: 'object',
        minProperties: 1,
        description: 'Dotted paths into the experiment (train.optimizer.learning_rate, model.vars.embedding_dim).',
        additionalProperties: { $ref: '#/definitions/parameter' },
      },
      max_trials: positiveInteger('Tessera\u2019s earlier name for run_cap; still accepted.'),
      parallel: positiveInteger('Trials running at once (default 1).'),
      seed: { type: 'integer', description: 'Seeds every random draw of the search (default 0).' },
      max_attempts: positiveInteger('Runs of a trial before its failure is final (default 1).'),
      early_terminate: earlyTerminate,
      bayes: {
        type: 'object',
        additionalProperties: false,
        description: 'TPE settings.',
        properties: {
          startup_trials: positiveInteger('Random trials before TPE takes over (default 10).'),
          candidates: positiveInteger('Candidates drawn from l(x) per suggestion (default 24).'),
          gamma: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'Share of trials taken as good (default 0.25).' },
          prior_weight: { type: 'number', exclusiveMinimum: 0, description: 'Weight of the prior component (default 1).' },
        },
      },
    },
  };
}
