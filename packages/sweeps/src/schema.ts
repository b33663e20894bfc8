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

const CONTINUOUS = ['uniform', 'log_uniform', 'int_uniform'];

/**
 * One searched parameter: `{values: [...]}` (grid, or a categorical choice for random/bayes) or
 * a distribution `{distribution: uniform | log_uniform | int_uniform, min, max}` /
 * `{distribution: categorical, values: [...]}`.
 */
const parameter: JsonSchema = {
  type: 'object',
  description: 'values: [...] for grid/categorical, or {distribution, min, max} for random and bayes.',
  properties: {
    distribution: {
      enum: [...CONTINUOUS, 'categorical'],
      description: 'uniform | log_uniform (uniform in log space) | int_uniform (both ends included) | categorical',
    },
    min: { type: 'number', description: 'Lower bound (log_uniform: > 0).' },
    max: { type: 'number', description: 'Upper bound (inclusive for int_uniform).' },
    values: { type: 'array', minItems: 1, uniqueItems: true, items: scalar, description: 'The choices, in grid order.' },
  },
  additionalProperties: false,
  allOf: [
    {
      if: { required: ['distribution'], properties: { distribution: { enum: CONTINUOUS } } },
      then: { type: 'object', properties: { min: true, max: true }, required: ['min', 'max'] },
      else: { type: 'object', properties: { values: true }, required: ['values'] },
    },
  ],
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
    description: 'Hyperband as brackets of ASHA: bracket s starts its rungs at grace_period * eta^s; trial i joins bracket i mod brackets.',
    properties: {
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
    required: ['experiment', 'method', 'objective', 'parameters'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'Default: the file name without extension.' },
      description: { type: 'string' },
      experiment: { type: 'string', minLength: 1, description: 'The base experiment file, relative to this file.' },
      method: { enum: ['grid', 'random', 'bayes'], description: 'grid (every combination) | random | bayes (TPE).' },
      objective: {
        type: 'object',
        additionalProperties: false,
        required: ['metric', 'goal'],
        properties: {
          metric: { type: 'string', minLength: 1, description: 'A per-epoch metric, e.g. val_accuracy or val_loss.' },
          goal: { enum: ['maximize', 'minimize'] },
          summary: { enum: ['last', 'best'], description: 'A trial\u2019s result: the last epoch\u2019s value (default) or its best.' },
        },
      },
      parameters: {
        type: 'object',
        minProperties: 1,
        description: 'Dotted paths into the experiment (train.optimizer.learning_rate, model.vars.embedding_dim).',
        additionalProperties: parameter,
      },
      max_trials: positiveInteger('Trials to run (grid: default all of them; random and bayes: required).'),
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
