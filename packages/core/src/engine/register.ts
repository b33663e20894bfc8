import type { Registries } from '../registry/kinds.ts';
import { Adam, AdamW, Sgd, type Optimizer } from './optimizers.ts';
import { constantSchedule, cosineSchedule, type Schedule } from './schedules.ts';
import { EarlyStopping, ReduceLrOnPlateau, type Callback } from './callbacks.ts';
import { adamParams, adamwParams, constantParams, cosineParams, earlyStoppingParams, reduceLrOnPlateauParams, sgdParams } from './params.ts';

/** Registers core's optimizers, learning-rate schedules and callbacks. */
export function registerEngine(registries: Registries): void {
  registries.optimizers
    .register({
      type: 'adamw',
      description: 'Adam with decoupled weight decay (Keras 3 AdamW).',
      params: adamwParams,
      create: (params): Optimizer => new AdamW(params),
    })
    .register({
      type: 'adam',
      description: 'Adam (Keras 3 update rule; weight_decay, if set, is decoupled as in AdamW).',
      params: adamParams,
      create: (params): Optimizer => new Adam(params),
    })
    .register({
      type: 'sgd',
      description: 'Stochastic gradient descent with optional (Nesterov) momentum.',
      params: sgdParams,
      create: (params): Optimizer => new Sgd(params),
    });

  registries.schedules
    .register({
      type: 'constant',
      description: "The optimizer's learning_rate throughout.",
      params: constantParams,
      create: (): Schedule => constantSchedule(),
    })
    .register({
      type: 'cosine',
      description: 'Linear warmup to the base learning rate, then cosine decay (Keras CosineDecay).',
      params: cosineParams,
      create: (params): Schedule => cosineSchedule(params),
    });

  registries.callbacks
    .register({
      type: 'reduce_lr_on_plateau',
      description: 'Multiply the learning rate by `factor` when `monitor` stops improving (Keras).',
      params: reduceLrOnPlateauParams,
      create: (params): Callback => new ReduceLrOnPlateau(params),
    })
    .register({
      type: 'early_stopping',
      description: 'Stop when `monitor` stops improving; optionally restore the best weights (Keras).',
      params: earlyStoppingParams,
      create: (params): Callback => new EarlyStopping(params),
    });
}
