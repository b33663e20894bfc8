import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type ParamsOf, type RawImages, type Transform, type TransformEntry, type TransformState } from '@tessera/core/registry';
import { channelMoments } from '../store.ts';

const numbers = { type: 'array', items: { type: 'number' }, minItems: 1 } as const;

/**
 * normalize's params, declared once (core's registry/params.ts): fixed per-channel statistics
 * (when absent they are adapted on the training images) and the floor of the standard deviation,
 * as in Keras' Normalization (backend epsilon 1e-7).
 */
export const normalizeParams = {
  properties: {
    mean: { ...numbers, description: 'fixed per-channel means (0..255 scale); default: adapted' },
    variance: { ...numbers, description: 'fixed per-channel variances; default: adapted' },
    epsilon: { type: 'number', exclusiveMinimum: 0, default: 1e-7, description: 'floor of the standard deviation' },
  },
  dependencies: { mean: ['variance'], variance: ['mean'] },
  additionalProperties: false,
} as const;
export type NormalizeParams = ParamsOf<typeof normalizeParams>;
const DEFAULTS = defaultsOf(normalizeParams);

export interface NormalizeState extends TransformState {
  mean: number[];
  variance: number[];
}

/**
 * x -> (x - mean) / max(sqrt(variance), epsilon) per channel, like Keras' Normalization layer
 * adapted on the raw training images. The statistics are model state: the dataset reports them
 * in `state()` so inference can apply the same mapping.
 */
export class Normalize implements Transform {
  readonly random = false;
  private stats: NormalizeState | undefined;
  private readonly fixed: NormalizeState | undefined;
  private readonly epsilon: number;

  constructor(params: NormalizeParams = {}) {
    this.epsilon = params.epsilon ?? DEFAULTS.epsilon;
    if (params.mean && params.variance) this.fixed = this.stats = { mean: params.mean, variance: params.variance };
  }

  outputShape(inputShape: number[]): number[] {
    return inputShape;
  }

  /** Fixed statistics, when given, win over the images (and are still reported as state). */
  adapt(images: RawImages): NormalizeState {
    this.stats = this.fixed ?? channelMoments(images);
    return this.stats;
  }

  /** `adapt` over a streamed split: one pass, the same statistics (exact sums); fixed ones read nothing. */
  adaptChunks(chunks: Iterable<RawImages>): NormalizeState {
    this.stats = this.fixed ?? channelMoments(chunks);
    return this.stats;
  }

  restore(state: TransformState): void {
    const { mean, variance } = state as NormalizeState;
    this.stats = { mean: [...mean], variance: [...variance] };
  }

  state(): NormalizeState | undefined {
    return this.stats;
  }

  apply(x: tf.Tensor4D): tf.Tensor4D {
    if (!this.stats) throw new Error('normalize: no statistics yet; the dataset adapts them on the training images first');
    const { mean, variance } = this.stats;
    const channels = x.shape[3];
    if (mean.length !== channels) {
      throw new Error(`normalize: statistics have ${mean.length} channels, the images have ${channels}`);
    }
    return tf.tidy(() => {
      const std = variance.map((v) => Math.max(Math.sqrt(v), this.epsilon));
      return tf.div(tf.sub(x, tf.tensor1d(mean)), tf.tensor1d(std)) as tf.Tensor4D;
    });
  }
}

export const normalizeEntry: TransformEntry<NormalizeParams> = {
  type: 'normalize',
  description: 'Per-channel (x - mean) / sqrt(variance), statistics adapted on all raw training images',
  params: normalizeParams,
  create: (params) => new Normalize(params),
};
