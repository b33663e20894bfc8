import * as tf from '@tensorflow/tfjs';
import type { BlockEntry } from '@tessera/core';
import { initializerSchema, makeInitializer, resolveAxis, singleShape, singleTensor, snakeCase, subSeed, type InitializerName } from './common.ts';

export interface BatchNormArgs {
  /** The feature axis (default -1, the channels); statistics are taken over every other axis. */
  axis?: number;
  /** moving = moving * momentum + batch * (1 - momentum) (default 0.99, as Keras). */
  momentum?: number;
  /** Added to the variance (default 1e-3, as Keras). */
  epsilon?: number;
  /** Learn an offset beta (default true). */
  center?: boolean;
  /** Learn a scale gamma (default true). */
  scale?: boolean;
  gammaInitializer?: InitializerName;
  betaInitializer?: InitializerName;
  movingMeanInitializer?: InitializerName;
  movingVarianceInitializer?: InitializerName;
  seed?: number;
  name?: string;
}

/**
 * y = x * s + (beta - mean * s) with s = gamma / sqrt(variance + epsilon): the per-channel
 * arithmetic on [channels] vectors, then one multiply and one add over x (autodiff reaches the
 * batch statistics through them in training).
 */
function normalize(x: tf.Tensor, axis: number, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor | undefined, beta: tf.Tensor | undefined, epsilon: number, size: number): tf.Tensor {
  let scale = tf.rsqrt(tf.add(variance, epsilon));
  if (gamma) scale = tf.mul(scale, gamma);
  let shift = tf.neg(tf.mul(mean, scale));
  if (beta) shift = tf.add(shift, beta);
  if (axis !== x.rank - 1) {
    const broadcast = x.shape.map((n, i) => (i === axis ? size : 1));
    scale = scale.reshape(broadcast);
    shift = shift.reshape(broadcast);
  }
  return tf.add(tf.mul(x, scale), shift);
}

/**
 * Keras' BatchNormalization. In training it normalises with the batch's mean and (biased)
 * variance and moves the non-trainable moving mean and variance towards them; at inference it
 * normalises with the moving statistics. The moving statistics are weights like any other (not
 * trainable): checkpoints, exports and `exp summary` see them.
 */
export class BatchNorm extends tf.layers.Layer {
  static className = 'TesseraBatchNorm';
  readonly axis: number;
  readonly momentum: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly gammaInitializer: InitializerName;
  readonly betaInitializer: InitializerName;
  readonly movingMeanInitializer: InitializerName;
  readonly movingVarianceInitializer: InitializerName;
  readonly seed: number;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;
  private movingMean?: tf.LayerVariable;
  private movingVariance?: tf.LayerVariable;

  constructor(args: BatchNormArgs) {
    super(args);
    this.axis = args.axis ?? -1;
    this.momentum = args.momentum ?? 0.99;
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new Error(`batch_norm: momentum must be in [0, 1], got ${this.momentum}`);
    this.epsilon = args.epsilon ?? 1e-3;
    if (!(this.epsilon > 0)) throw new Error(`batch_norm: epsilon must be positive, got ${this.epsilon}`);
    this.center = args.center ?? true;
    this.scale = args.scale ?? true;
    this.gammaInitializer = snakeCase(args.gammaInitializer ?? 'ones') as InitializerName;
    this.betaInitializer = snakeCase(args.betaInitializer ?? 'zeros') as InitializerName;
    this.movingMeanInitializer = snakeCase(args.movingMeanInitializer ?? 'zeros') as InitializerName;
    this.movingVarianceInitializer = snakeCase(args.movingVarianceInitializer ?? 'ones') as InitializerName;
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape, 'batch_norm');
    const size = shape[resolveAxis(this.axis, shape.length, 'batch_norm')];
    if (size == null) throw new Error('batch_norm: the size of the feature axis must be known');
    const init = (name: InitializerName, n: number) => makeInitializer(name, subSeed(this.seed, n));
    if (this.scale) this.gamma = this.addWeight('gamma', [size], 'float32', init(this.gammaInitializer, 0));
    if (this.center) this.beta = this.addWeight('beta', [size], 'float32', init(this.betaInitializer, 1));
    this.movingMean = this.addWeight('moving_mean', [size], 'float32', init(this.movingMeanInitializer, 2), undefined, false);
    this.movingVariance = this.addWeight('moving_variance', [size], 'float32', init(this.movingVarianceInitializer, 3), undefined, false);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const axis = resolveAxis(this.axis, x.rank, 'batch_norm');
      const size = x.shape[axis]!;
      let mean: tf.Tensor = this.movingMean!.read();
      let variance: tf.Tensor = this.movingVariance!.read();
      if (kwargs?.['training']) {
        const reduce = [...Array(x.rank).keys()].filter((i) => i !== axis);
        ({ mean, variance } = tf.moments(x, reduce));
        // The moving statistics take the batch's values; nothing of the loss depends on them in
        // training, so no gradient flows back through the update.
        const keep = 1 - this.momentum;
        for (const [moving, batch] of [[this.movingMean!, mean], [this.movingVariance!, variance]] as const) {
          moving.write(tf.add(tf.mul(moving.read(), this.momentum), tf.mul(batch, keep)));
        }
      }
      return normalize(x, axis, mean, variance, this.gamma?.read(), this.beta?.read(), this.epsilon, size);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'batch_norm');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      axis: this.axis,
      momentum: this.momentum,
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
      gammaInitializer: this.gammaInitializer,
      betaInitializer: this.betaInitializer,
      movingMeanInitializer: this.movingMeanInitializer,
      movingVarianceInitializer: this.movingVarianceInitializer,
      seed: this.seed,
    };
  }
}

export interface BatchNormParams {
  axis?: number;
  momentum?: number;
  epsilon?: number;
  center?: boolean;
  scale?: boolean;
  gamma_initializer?: InitializerName;
  beta_initializer?: InitializerName;
  moving_mean_initializer?: InitializerName;
  moving_variance_initializer?: InitializerName;
}

export const batchNormEntry: BlockEntry<BatchNormParams> = {
  type: 'batch_norm',
  description: "Keras' BatchNormalization: batch statistics in training, non-trainable moving mean/variance (momentum 0.99) at inference.",
  params: {
    type: 'object',
    additionalProperties: false,
    properties: {
      axis: { type: 'integer', default: -1, description: 'Feature axis; statistics are taken over all the others.' },
      momentum: { type: 'number', minimum: 0, maximum: 1, default: 0.99, description: 'moving = moving * momentum + batch * (1 - momentum).' },
      epsilon: { type: 'number', exclusiveMinimum: 0, default: 0.001, description: 'Added to the variance (Keras\' default 1e-3).' },
      center: { type: 'boolean', default: true, description: 'Learn an offset beta.' },
      scale: { type: 'boolean', default: true, description: 'Learn a scale gamma.' },
      gamma_initializer: initializerSchema('ones', 'scale gamma'),
      beta_initializer: initializerSchema('zeros', 'offset beta'),
      moving_mean_initializer: initializerSchema('zeros', 'moving mean'),
      moving_variance_initializer: initializerSchema('ones', 'moving variance'),
    },
  },
  create: (params, ctx) =>
    new BatchNorm({
      axis: params.axis,
      momentum: params.momentum,
      epsilon: params.epsilon,
      center: params.center,
      scale: params.scale,
      gammaInitializer: params.gamma_initializer,
      betaInitializer: params.beta_initializer,
      movingMeanInitializer: params.moving_mean_initializer,
      movingVarianceInitializer: params.moving_variance_initializer,
      seed: ctx.seed,
      name: ctx.name,
    }),
};

tf.serialization.registerClass(BatchNorm);
