import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { singleShape, singleTensor } from './common.ts';

export interface TransposeArgs {
  /** A permutation of all axes, batch included, that keeps the batch first: [0, 2, 1] swaps patches and channels. */
  perm: number[];
  name?: string;
}

/** Permutes axes, like keras.ops.transpose(x, axes=perm). */
export class Transpose extends tf.layers.Layer {
  static className = 'TesseraTranspose';
  readonly perm: number[];

  constructor(args: TransposeArgs) {
    super(args);
    const perm = args.perm;
    const isPermutation = [...perm].sort((a, b) => a - b).every((axis, i) => axis === i);
    if (!isPermutation || perm[0] !== 0) {
      throw new Error(`transpose: perm must be a permutation of 0..${perm.length - 1} starting with 0 (the batch), got [${perm}]`);
    }
    this.perm = [...perm];
  }

  private checkRank(rank: number): void {
    if (rank !== this.perm.length) throw new Error(`transpose: perm [${this.perm}] has ${this.perm.length} axes, the input has ${rank}`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      this.checkRank(x.rank);
      return tf.transpose(x, this.perm);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'transpose');
    this.checkRank(shape.length);
    return this.perm.map((axis) => shape[axis]!);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), perm: this.perm };
  }
}

/** transpose's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const transposeParams = {
  type: 'object',
  additionalProperties: false,
  required: ['perm'],
  properties: {
    perm: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 2, description: 'Permutation of the axes, batch first.' },
  },
} as const satisfies JsonSchema;
export type TransposeParams = FromSchema<typeof transposeParams>;

export const transposeEntry: BlockEntry<TransposeParams> = {
  type: 'transpose',
  description: 'Permutes axes (perm includes the batch axis 0 first); [0, 2, 1] swaps patches and channels.',
  params: transposeParams,
  create: (params, ctx) => new Transpose({ perm: params.perm, name: ctx.name }),
};

tf.serialization.registerClass(Transpose);
