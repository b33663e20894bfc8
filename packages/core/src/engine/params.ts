import { defaultsOf, type ParamsOf } from '../registry/params.ts';

/*
 * The params of core's optimizers, schedules and callbacks, declared once (registry/params.ts):
 * the schema `exp schema` emits and the validator checks, the TypeScript types the classes take
 * (FromSchema) and the defaults they fall back to when constructed directly (defaultsOf).
 * Registered by register.ts; engine/register.test.ts checks that an entry made from no params
 * is the one made from these defaults.
 */

/** An entry's params schema: an object schema without `type` (the schema assembler adds it). */
const object = <const P extends Record<string, unknown>>(properties: P) => ({ properties, additionalProperties: false }) as const;

const learningRate = <D extends number>(defaultValue: D) =>
  ({ type: 'number', exclusiveMinimum: 0, description: 'Base (peak) learning rate.', default: defaultValue }) as const;

const clipping = {
  clipnorm: { type: 'number', exclusiveMinimum: 0, description: 'Clip each gradient to this L2 norm.' },
  global_clipnorm: { type: 'number', exclusiveMinimum: 0, description: 'Scale all gradients so that their joint L2 norm is at most this.' },
} as const;

const decay = <D extends number>(defaultValue: D) =>
  ({
    weight_decay: {
      type: 'number',
      minimum: 0,
      description: 'Decoupled weight decay: var -= learning_rate * weight_decay * var before each update.',
      default: defaultValue,
    },
    exclude_from_weight_decay: {
      type: 'array',
      items: { type: 'string' },
      default: [],
      description: 'Weight-name substrings that get no weight decay (default: every trainable weight decays, as in Keras 3).',
    },
  }) as const;

const adamProperties = <D extends number>(weightDecay: D) =>
  ({
    learning_rate: learningRate(0.001),
    beta_1: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.9, description: 'Decay rate of the first-moment estimate.' },
    beta_2: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.999, description: 'Decay rate of the second-moment estimate.' },
    epsilon: { type: 'number', exclusiveMinimum: 0, description: 'Added to sqrt(v), not bias-corrected (Keras).', default: 1e-7 },
    ...decay(weightDecay),
    ...clipping,
  }) as const;

export const adamParams = object(adamProperties(0));
export const adamwParams = object(adamProperties(0.004));
export const sgdParams = object({
  learning_rate: learningRate(0.01),
  momentum: { type: 'number', minimum: 0, maximum: 1, default: 0, description: 'Momentum factor.' },
  nesterov: { type: 'boolean', default: false, description: 'Nesterov momentum.' },
  ...decay(0),
  ...clipping,
});

export type AdamParams = ParamsOf<typeof adamParams>;
export type SgdParams = ParamsOf<typeof sgdParams>;
/** Clipping options shared by every optimizer (Keras names). */
export type ClipParams = Pick<AdamParams, 'clipnorm' | 'global_clipnorm'>;
/** Decoupled weight decay (before each update, var -= learning_rate * weight_decay * var), with Keras' exclusions. */
export type WeightDecayParams = Pick<AdamParams, 'weight_decay' | 'exclude_from_weight_decay'>;
export const ADAM_DEFAULTS = defaultsOf(adamParams);
export const ADAMW_DEFAULTS = defaultsOf(adamwParams);
export const SGD_DEFAULTS = defaultsOf(sgdParams);

export const constantParams = object({});
export const cosineParams = object({
  warmup_steps: { type: 'integer', minimum: 0, description: 'Linear warmup length in optimizer steps.', default: 0 },
  warmup_epochs: { type: 'number', minimum: 0, description: 'Linear warmup length in epochs (the larger of the two wins).', default: 0 },
  warmup_start: { type: 'number', minimum: 0, description: 'Learning rate at the start of the warmup.', default: 0 },
  alpha: { type: 'number', minimum: 0, maximum: 1, default: 0, description: 'Final rate as a fraction of the base rate.' },
  decay_steps: { type: 'integer', minimum: 1, description: 'Length of the cosine part; default: the rest of the run.' },
});
export type CosineParams = ParamsOf<typeof cosineParams>;
export const COSINE_DEFAULTS = defaultsOf(cosineParams);

const monitor = {
  type: 'string',
  default: 'val_loss',
  description: 'A Keras metric name: loss, accuracy, top5_accuracy, or one of them with a val_ prefix.',
} as const;
const mode = { enum: ['auto', 'min', 'max'], default: 'auto', description: 'auto: max when the monitor name contains "acc".' } as const;

export const reduceLrOnPlateauParams = object({
  monitor,
  mode,
  factor: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.1, description: 'new_lr = lr * factor.' },
  patience: { type: 'integer', minimum: 0, description: 'Epochs without improvement before reducing.', default: 10 },
  min_delta: { type: 'number', minimum: 0, description: 'Smallest change that counts as an improvement.', default: 1e-4 },
  cooldown: { type: 'integer', minimum: 0, description: 'Epochs to wait after a reduction before counting again.', default: 0 },
  min_lr: { type: 'number', minimum: 0, description: 'Lower bound on the learning rate.', default: 0 },
});
export type ReduceLrOnPlateauParams = ParamsOf<typeof reduceLrOnPlateauParams>;
export const REDUCE_LR_ON_PLATEAU_DEFAULTS = defaultsOf(reduceLrOnPlateauParams);

export const earlyStoppingParams = object({
  monitor,
  mode,
  patience: { type: 'integer', minimum: 0, description: 'Epochs without improvement before stopping.', default: 0 },
  min_delta: { type: 'number', minimum: 0, description: 'Smallest change that counts as an improvement.', default: 0 },
  baseline: { type: 'number', description: 'Stop unless the monitor beats this value.' },
  restore_best_weights: { type: 'boolean', default: false, description: "Put back the best epoch's weights at the end." },
  start_from_epoch: { type: 'integer', minimum: 0, description: 'Epochs to train before watching the monitor.', default: 0 },
});
export type EarlyStoppingParams = ParamsOf<typeof earlyStoppingParams>;
export const EARLY_STOPPING_DEFAULTS = defaultsOf(earlyStoppingParams);
