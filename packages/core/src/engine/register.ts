import type { JsonSchema } from '../registry/registry.ts';
import type { Registries } from '../registry/kinds.ts';
import { Adam, AdamW, Sgd, type Optimizer } from './optimizers.ts';
import { constantSchedule, cosineSchedule, type Schedule } from './schedules.ts';
import { EarlyStopping, ReduceLrOnPlateau, type Callback } from './callbacks.ts';

const positive = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: 'number', exclusiveMinimum: 0, description, ...extra,
});
const nonNegative = (description: string, extra: JsonSchema = {}): JsonSchema => ({
  type: 'number', minimum: 0, description, ...extra,
});
const fraction = (description: string, defaultValue: number): JsonSchema => ({
  type: 'number', minimum: 0, exclusiveMaximum: 1, default: defaultValue, description,
});
const count = (description: string, defaultValue?: number): JsonSchema => ({
  type: 'integer', minimum: 0, description, ...(defaultValue !== undefined ? { default: defaultValue } : {}),
});
const object = (properties: Record<string, JsonSchema>): JsonSchema => ({ properties, additionalProperties: false });

const clipping: Record<string, JsonSchema> = {
  clipnorm: positive('Clip each gradient to this L2 norm.'),
  global_clipnorm: positive('Scale all gradients so that their joint L2 norm is at most this.'),
};

const decay = (defaultValue: number): Record<string, JsonSchema> => ({
  weight_decay: nonNegative('Decoupled weight decay: var -= learning_rate * weight_decay * var before each update.', {
    default: defaultValue,
  }),
  exclude_from_weight_decay: {
    type: 'array', items: { type: 'string' }, default: [],
    description: 'Weight-name substrings that get no weight decay (default: every trainable weight decays, as in Keras 3).',
  },
});

const adamParams = (weightDecay: number): JsonSchema =>
  object({
    learning_rate: positive('Base (peak) learning rate.', { default: 0.001 }),
    beta_1: fraction('Decay rate of the first-moment estimate.', 0.9),
    beta_2: fraction('Decay rate of the second-moment estimate.', 0.999),
    epsilon: positive('Added to sqrt(v), not bias-corrected (Keras).', { default: 1e-7 }),
    ...decay(weightDecay),
    ...clipping,
  });

const mode: JsonSchema = { enum: ['auto', 'min', 'max'], default: 'auto', description: 'auto: max when the monitor name contains "acc".' };
const monitor: JsonSchema = {
  type: 'string', default: 'val_loss',
  description: 'A Keras metric name: loss, accuracy, top5_accuracy, or one of them with a val_ prefix.',
};

/** Registers core's optimizers, learning-rate schedules and callbacks. */
export function registerEngine(registries: Registries): void {
  registries.optimizers
    .register({
      type: 'adamw',
      description: 'Adam with decoupled weight decay (Keras 3 AdamW).',
      params: adamParams(0.004),
      create: (params): Optimizer => new AdamW(params),
    })
    .register({
      type: 'adam',
      description: 'Adam (Keras 3 update rule; weight_decay, if set, is decoupled as in AdamW).',
      params: adamParams(0),
      create: (params): Optimizer => new Adam(params),
    })
    .register({
      type: 'sgd',
      description: 'Stochastic gradient descent with optional (Nesterov) momentum.',
      params: object({
        learning_rate: positive('Base (peak) learning rate.', { default: 0.01 }),
        momentum: { type: 'number', minimum: 0, maximum: 1, default: 0, description: 'Momentum factor.' },
        nesterov: { type: 'boolean', default: false, description: 'Nesterov momentum.' },
        ...decay(0),
        ...clipping,
      }),
      create: (params): Optimizer => new Sgd(params),
    });

  registries.schedules
    .register({
      type: 'constant',
      description: "The optimizer's learning_rate throughout.",
      params: object({}),
      create: (): Schedule => constantSchedule(),
    })
    .register({
      type: 'cosine',
      description: 'Linear warmup to the base learning rate, then cosine decay (Keras CosineDecay).',
      params: object({
        warmup_steps: count('Linear warmup length in optimizer steps.', 0),
        warmup_epochs: nonNegative('Linear warmup length in epochs (the larger of the two wins).', { default: 0 }),
        warmup_start: nonNegative('Learning rate at the start of the warmup.', { default: 0 }),
        alpha: { type: 'number', minimum: 0, maximum: 1, default: 0, description: 'Final rate as a fraction of the base rate.' },
        decay_steps: { type: 'integer', minimum: 1, description: 'Length of the cosine part; default: the rest of the run.' },
      }),
      create: (params): Schedule => cosineSchedule(params),
    });

  registries.callbacks
    .register({
      type: 'reduce_lr_on_plateau',
      description: 'Multiply the learning rate by `factor` when `monitor` stops improving (Keras).',
      params: object({
        monitor,
        mode,
        factor: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.1, description: 'new_lr = lr * factor.' },
        patience: count('Epochs without improvement before reducing.', 10),
        min_delta: nonNegative('Smallest change that counts as an improvement.', { default: 1e-4 }),
        cooldown: count('Epochs to wait after a reduction before counting again.', 0),
        min_lr: nonNegative('Lower bound on the learning rate.', { default: 0 }),
      }),
      create: (params): Callback => new ReduceLrOnPlateau(params),
    })
    .register({
      type: 'early_stopping',
      description: 'Stop when `monitor` stops improving; optionally restore the best weights (Keras).',
      params: object({
        monitor,
        mode,
        patience: count('Epochs without improvement before stopping.', 0),
        min_delta: nonNegative('Smallest change that counts as an improvement.', { default: 0 }),
        baseline: { type: 'number', description: 'Stop unless the monitor beats this value.' },
        restore_best_weights: { type: 'boolean', default: false, description: 'Put back the best epoch\'s weights at the end.' },
        start_from_epoch: count('Epochs to train before watching the monitor.', 0),
      }),
      create: (params): Callback => new EarlyStopping(params),
    });
}
