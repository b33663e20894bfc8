import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { dropoutMask, SeededDrop } from './dropout.ts';

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
export class DropPath extends SeededDrop {
  static className = 'TesseraDropPath';

  constructor(args: DropPathArgs) {
    super(args, 'drop_path');
  }

  protected override drop(x: tf.Tensor, seed: number): tf.Tensor {
    return tf.mul(x, dropoutMask([x.shape[0]!, ...x.shape.slice(1).map(() => 1)], this.rate, seed));
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
