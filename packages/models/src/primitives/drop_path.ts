import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { singleShape, singleTensor } from './common.ts';
import { dropoutMask, stepSeed } from './dropout.ts';

export interface DropPathArgs {
  /** Probability that an example's whole branch is dropped in training, in [0, 1). */
  rate: number;
  seed?: number;
  name?: string;
}

/**
 * Stochastic depth (timm's DropPath): in training, each example's input is zeroed with
 * probability `rate` and kept scaled by 1/(1-rate) otherwise; the identity at inference. Put it
 * last in a residual's layers to drop the whole branch. The per-example mask is dropout's mask
 * over [batch, 1, ...], drawn from the same seeded source as dropout.
 */
export class DropPath extends tf.layers.Layer {
  static className = 'TesseraDropPath';
  readonly rate: number;
  readonly seed: number;

  constructor(args: DropPathArgs) {
    super(args);
    if (!(args.rate >= 0 && args.rate < 1)) throw new Error(`drop_path: rate must be in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
    this.seed = args.seed ?? 0;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = singleTensor(inputs);
    if (!kwargs?.['training'] || this.rate === 0) return tf.clone(x);
    const seed = stepSeed(this.seed);
    return tf.tidy(() => tf.mul(x, dropoutMask([x.shape[0]!, ...x.shape.slice(1).map(() => 1)], this.rate, seed)));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'drop_path');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

/** drop_path's params, declared once (core's registry/params.ts): the type derives from it. */
export const dropPathParams = {
  type: 'object',
  additionalProperties: false,
  required: ['rate'],
  properties: { rate: { type: 'number', minimum: 0, exclusiveMaximum: 1, description: 'Probability of dropping an example\'s branch.' } },
} as const satisfies JsonSchema;
export type DropPathParams = FromSchema<typeof dropPathParams>;

export const dropPathEntry: BlockEntry<DropPathParams> = {
  type: 'drop_path',
  description: 'Stochastic depth: drops whole examples of a residual branch in training (per-example dropout); seeded like dropout.',
  params: dropPathParams,
  create: (params, ctx) => new DropPath({ rate: params.rate, seed: ctx.seed, name: ctx.name }),
};

tf.serialization.registerClass(DropPath);
