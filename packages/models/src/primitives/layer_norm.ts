import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, hasFusedKernel } from '@tessera/core/backend';
import { childSeed } from '@tessera/core/random';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import {
  initializerSchema,
  makeInitializer,
  resolveAxis,
  singleShape,
  singleTensor,
  snakeCase,
  type InitializerName,
} from './common.ts';

export interface LayerNormArgs {
  /** The axis normalised over (default -1, the channels). */
  axis?: number;
  /** Added to the variance; Keras' default is 1e-3, the reference uses 1e-6. */
  epsilon?: number;
  /** Learn an offset beta (default true). */
  center?: boolean;
  /** Learn a scale gamma (default true). */
  scale?: boolean;
  /** Default ones. */
  gammaInitializer?: InitializerName;
  /** Default zeros. */
  betaInitializer?: InitializerName;
  seed?: number;
  name?: string;
}

/**
 * Normalises one axis: y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with gamma and beta
 * BROADCAST (tfjs-layers' LayerNormalization tiles them, and the gradient of Tile is a loop of
 * Slice kernels). The backward pass is written by hand: three reductions instead of the dozen
 * kernels autodiff emits for the same formula.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, axis: number, epsilon: number): tf.Tensor {
  if (axis === x.rank - 1 && x.dtype === 'float32' && hasFusedKernel(FUSED_KERNELS.layerNorm)) {
    return layerNormFused(x, gamma, beta, epsilon);
  }
  const broadcastShape = x.shape.map((size, i) => (i === axis ? size : 1));
  const otherAxes = [...Array(x.rank).keys()].filter((i) => i !== axis);
  const normalise = tf.customGrad((...args: unknown[]) => {
    const [input, g, b] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
    const save = args[3] as tf.GradSaveFunc;
    const gammaB = g.reshape(broadcastShape);
    const mean = tf.mean(input, axis, true);
    const centred = tf.sub(input, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), axis, true), epsilon));
    const normalised = tf.mul(centred, rstd);
    save([normalised, rstd, gammaB]);
    return {
      value: tf.add(tf.mul(normalised, gammaB), b.reshape(broadcastShape)),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const upstream = Array.isArray(dy) ? dy[0]! : dy;
        const [xhat, r, gb] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dxhat = tf.mul(upstream, gb);
        // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), all means along `axis`.
        const dx = tf.mul(
          r,
          tf.sub(tf.sub(dxhat, tf.mean(dxhat, axis, true)), tf.mul(xhat, tf.mean(tf.mul(dxhat, xhat), axis, true))),
        );
        const dgamma = tf.sum(tf.mul(upstream, xhat), otherAxes);
        const dbeta = tf.sum(upstream, otherAxes);
        return [dx, dgamma, dbeta];
      },
    };
  });
  return (normalise as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor)(x, gamma, beta);
}

/**
 * The same over the last axis through the fused kernels (backend/kernels/): one kernel each
 * way instead of ~7 forward and ~11 backward, and the backward pass keeps x with a mean and an
 * rstd per row (x is alive anyway as the previous layer's output) instead of a normalised copy.
 */
function layerNormFused(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  const columns = x.shape[x.rank - 1]!;
  const normalise = tf.customGrad((...args: unknown[]) => {
    const [input, g, b] = args as [tf.Tensor, tf.Tensor, tf.Tensor];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x: input, gamma: g, beta: b }, { epsilon }) as tf.Tensor[];
    save([input, mean!, rstd!, g]);
    return {
      value: y!,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [sx, sMean, sRstd, sGamma] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const upstream = Array.isArray(dy) ? dy[0]! : dy;
        return tf.engine().runKernel(FUSED_KERNELS.layerNormGrad, { dy: upstream, x: sx, mean: sMean, rstd: sRstd, gamma: sGamma }) as tf.Tensor[];
      },
    };
  }) as unknown as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  return normalise(x.reshape([-1, columns]), gamma, beta).reshape(x.shape);
}

export class LayerNorm extends tf.layers.Layer {
  static className = 'TesseraLayerNorm';
  readonly axis: number;
  readonly epsilon: number;
  readonly center: boolean;
  readonly scale: boolean;
  readonly gammaInitializer: InitializerName;
  readonly betaInitializer: InitializerName;
  readonly seed: number;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;

  constructor(args: LayerNormArgs) {
    super(args);
    this.axis = args.axis ?? DEFAULTS.axis;
    this.epsilon = args.epsilon ?? DEFAULTS.epsilon;
    if (!(this.epsilon > 0)) throw new Error(`layer_norm: epsilon must be positive, got ${this.epsilon}`);
    this.center = args.center ?? DEFAULTS.center;
    this.scale = args.scale ?? DEFAULTS.scale;
    this.gammaInitializer = snakeCase(args.gammaInitializer ?? DEFAULTS.gamma_initializer) as InitializerName;
    this.betaInitializer = snakeCase(args.betaInitializer ?? DEFAULTS.beta_initializer) as InitializerName;
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape, 'layer_norm');
    const size = shape[resolveAxis(this.axis, shape.length, 'layer_norm')];
    if (size == null) throw new Error('layer_norm: the size of the normalised axis must be known');
    if (this.scale) {
      this.gamma = this.addWeight('gamma', [size], 'float32', makeInitializer(this.gammaInitializer, childSeed(this.seed, 0)));
    }
    if (this.center) {
      this.beta = this.addWeight('beta', [size], 'float32', makeInitializer(this.betaInitializer, childSeed(this.seed, 1)));
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const axis = resolveAxis(this.axis, x.rank, 'layer_norm');
      const size = x.shape[axis]!;
      // A missing gamma or beta is a constant one or zero: the same kernel serves every variant.
      const gamma = this.gamma ? this.gamma.read() : tf.ones([size]);
      const beta = this.beta ? this.beta.read() : tf.zeros([size]);
      return layerNorm(x, gamma, beta, axis, this.epsilon);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'layer_norm');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      axis: this.axis,
      epsilon: this.epsilon,
      center: this.center,
      scale: this.scale,
      gammaInitializer: this.gammaInitializer,
      betaInitializer: this.betaInitializer,
      seed: this.seed,
    };
  }
}

/** layer_norm's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const layerNormParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    axis: { type: 'integer', default: -1, description: 'Axis to normalise over.' },
    epsilon: { type: 'number', exclusiveMinimum: 0, default: 0.001, description: "Added to the variance (Keras' default 1e-3; the reference uses 1e-6)." },
    center: { type: 'boolean', default: true, description: 'Learn an offset beta.' },
    scale: { type: 'boolean', default: true, description: 'Learn a scale gamma.' },
    gamma_initializer: initializerSchema('ones', 'scale gamma'),
    beta_initializer: initializerSchema('zeros', 'offset beta'),
  },
} as const satisfies JsonSchema;
export type LayerNormParams = FromSchema<typeof layerNormParams>;
const DEFAULTS = defaultsOf(layerNormParams);

export const layerNormEntry: BlockEntry<LayerNormParams> = {
  type: 'layer_norm',
  description: 'Layer normalisation over one axis with broadcast gamma/beta and a hand-written gradient.',
  params: layerNormParams,
  create: (params, ctx) =>
    new LayerNorm({
      axis: params.axis,
      epsilon: params.epsilon,
      center: params.center,
      scale: params.scale,
      gammaInitializer: params.gamma_initializer,
      betaInitializer: params.beta_initializer,
      seed: ctx.seed,
      name: ctx.name,
    }),
};

tf.serialization.registerClass(LayerNorm);
