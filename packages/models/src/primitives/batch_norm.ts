import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, hasFusedKernel } from '@tessera/core/backend';
import { childSeed } from '@tessera/core/random';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { initializerSchema, makeInitializer, resolveAxis, singleShape, singleTensor, snakeCase, type InitializerName } from './common.ts';

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
 * arithmetic on [channels] vectors, then one multiply and one add over x. The inference path.
 */
function normalizeWith(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const scale = tf.mul(tf.rsqrt(tf.add(variance, epsilon)), gamma);
  return tf.add(tf.mul(x, scale), tf.sub(beta, tf.mul(mean, scale)));
}

/**
 * Training-mode batch normalisation over the last axis of x [rows, channels] with the batch's
 * mean and biased variance; returns [y, mean, variance]. The backward pass is written out, as
 * for layerNorm: dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with
 * dxhat = dy * gamma (gamma per column, so dx = rstd * gamma * (dy - mean(dy) - xhat *
 * mean(dy * xhat))), dgamma = sum(dy * xhat), dbeta = sum(dy), all over the rows: a handful of
 * kernels where autodiff through tf.moments emits dozens of full-size ones. The mean and
 * variance carry no gradient: the formula above already accounts for them (they only feed the
 * moving statistics besides).
 */
/**
 * The mean of each column of t [rows, columns] as ONE matrix-vector product, ones[1, rows] x t:
 * BLAS reads t once at full speed, where TF's column-wise Mean/Sum kernels ran ~4x slower here
 * (ConvMixer's 17 batch norms reduce [128 * 16 * 16, 256] six times each per step).
 */
function columnMean(t: tf.Tensor2D): tf.Tensor1D {
  const rows = t.shape[0];
  return tf.matMul(tf.fill([1, rows], 1 / rows), t).reshape([t.shape[1]]);
}

function trainingNormalize(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): { y: tf.Tensor2D; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const mean = columnMean(x);
  const variance = columnMean(tf.square(tf.sub(x, mean)) as tf.Tensor2D);
  const rstd = tf.rsqrt(tf.add(variance, epsilon));
  const normalise = tf.customGrad((...args: unknown[]) => {
    const [input, g, b] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    const xhat = tf.mul(tf.sub(input, mean), rstd);
    // Saved, not closed over: the call's tidy has disposed its own tensors by the backward pass.
    save([xhat, g, rstd]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const upstream = (Array.isArray(dy) ? dy[0]! : dy) as tf.Tensor2D;
        const [sXhat, sGamma, sRstd] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const n = upstream.shape[0];
        const dyXhat = columnMean(tf.mul(upstream, sXhat)); // mean(dxhat * xhat) is this times gamma
        const dyMean = columnMean(upstream); // and mean(dxhat) this times gamma
        const dx = tf.mul(tf.mul(sRstd, sGamma), tf.sub(tf.sub(upstream, dyMean), tf.mul(sXhat, dyXhat)));
        return [dx, tf.mul(dyXhat, n), tf.mul(dyMean, n)];
      },
    };
  }) as unknown as (x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D) => tf.Tensor2D;
  return { y: normalise(x, gamma, beta), mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}

/**
 * Training-mode batch normalisation of x [..., C] over every axis but the last: y, and the
 * batch's mean and biased variance [C] (for the moving statistics). Through the fused kernels
 * where the backend has them, else the composite ops (the same values, float32 rounding aside).
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  if (x.dtype === 'float32' && hasFusedKernel(FUSED_KERNELS.batchNorm)) return trainingNormalizeFused(x, gamma, beta, epsilon);
  const normalised = trainingNormalize(x.reshape([-1, x.shape[x.rank - 1]!]) as tf.Tensor2D, gamma, beta, epsilon);
  return { ...normalised, y: normalised.y.reshape(x.shape) };
}

/**
 * trainingNormalize through the fused batch-norm kernels (backend/kernels/batch_norm; on the native backend
 * TensorFlow's FusedBatchNormV3 and its gradient, as Keras): one kernel each way instead of
 * ~8 forward and ~10 backward full-size ones. x [n, h, w, C] goes in as it is, other ranks as
 * [1, 1, rows, C].
 */
function trainingNormalizeFused(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const size = x.shape[x.rank - 1]!;
  const input = x.rank === 4 ? x : x.reshape([1, 1, -1, size]);
  const [y, mean, variance] = tf.engine().runKernel(FUSED_KERNELS.batchNorm, { x: input, gamma, beta }, { epsilon }) as tf.Tensor[];
  return { y: y!.reshape(x.shape), mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
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
    this.axis = args.axis ?? DEFAULTS.axis;
    this.momentum = args.momentum ?? DEFAULTS.momentum;
    if (!(this.momentum >= 0 && this.momentum <= 1)) throw new Error(`batch_norm: momentum must be in [0, 1], got ${this.momentum}`);
    this.epsilon = args.epsilon ?? DEFAULTS.epsilon;
    if (!(this.epsilon > 0)) throw new Error(`batch_norm: epsilon must be positive, got ${this.epsilon}`);
    this.center = args.center ?? DEFAULTS.center;
    this.scale = args.scale ?? DEFAULTS.scale;
    this.gammaInitializer = snakeCase(args.gammaInitializer ?? DEFAULTS.gamma_initializer) as InitializerName;
    this.betaInitializer = snakeCase(args.betaInitializer ?? DEFAULTS.beta_initializer) as InitializerName;
    this.movingMeanInitializer = snakeCase(args.movingMeanInitializer ?? DEFAULTS.moving_mean_initializer) as InitializerName;
    this.movingVarianceInitializer = snakeCase(args.movingVarianceInitializer ?? DEFAULTS.moving_variance_initializer) as InitializerName;
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape, 'batch_norm');
    const size = shape[resolveAxis(this.axis, shape.length, 'batch_norm')];
    if (size == null) throw new Error('batch_norm: the size of the feature axis must be known');
    const init = (name: InitializerName, n: number) => makeInitializer(name, childSeed(this.seed, n));
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
      // The feature axis last, everything else as rows: [rows, channels].
      const perm = [...Array(x.rank).keys()].filter((i) => i !== axis).concat(axis);
      const moved = axis === x.rank - 1 ? x : tf.transpose(x, perm);
      const rows = moved.reshape([-1, size]) as tf.Tensor2D;
      // A missing gamma or beta is a constant one or zero: the same kernels serve every variant.
      const gamma = (this.gamma ? this.gamma.read() : tf.ones([size])) as tf.Tensor1D;
      const beta = (this.beta ? this.beta.read() : tf.zeros([size])) as tf.Tensor1D;
      let y: tf.Tensor;
      if (kwargs?.['training']) {
        const normalised = batchNormTraining(moved, gamma, beta, this.epsilon);
        const keep = 1 - this.momentum;
        for (const [moving, batch] of [[this.movingMean!, normalised.mean], [this.movingVariance!, normalised.variance]] as const) {
          moving.write(tf.add(tf.mul(moving.read(), this.momentum), tf.mul(batch, keep)));
        }
        y = normalised.y;
      } else {
        y = normalizeWith(rows, this.movingMean!.read(), this.movingVariance!.read(), gamma, beta, this.epsilon);
      }
      const shaped = y.reshape(moved.shape);
      if (axis === x.rank - 1) return shaped;
      const inverse = perm.map((_, i) => perm.indexOf(i));
      return tf.transpose(shaped, inverse);
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

/** batch_norm's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const batchNormParams = {
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
} as const satisfies JsonSchema;
export type BatchNormParams = FromSchema<typeof batchNormParams>;
const DEFAULTS = defaultsOf(batchNormParams);

export const batchNormEntry: BlockEntry<BatchNormParams> = {
  type: 'batch_norm',
  description: "Keras' BatchNormalization: batch statistics in training, non-trainable moving mean/variance (momentum 0.99) at inference.",
  params: batchNormParams,
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
