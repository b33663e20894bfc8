import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { singleShape, singleTensor } from './common.ts';

export interface PatchesArgs {
  /** Side of the square, non-overlapping patches. */
  size: number;
  name?: string;
}

/**
 * Cuts images [batch, h, w, c] into non-overlapping size x size patches:
 * [batch, (h/size)*(w/size), size*size*c], patches row-major, values inside a patch ordered
 * (row, column, channel) like Keras' extract_patches.
 */
export class Patches extends tf.layers.Layer {
  static className = 'TesseraPatches';
  readonly size: number;

  constructor(args: PatchesArgs) {
    super(args);
    if (!Number.isInteger(args.size) || args.size < 1) throw new Error(`patches: size must be a positive integer, got ${args.size}`);
    this.size = args.size;
  }

  private grid(shape: tf.Shape): [number, number, number] {
    if (shape.length !== 4) throw new Error(`patches: expects images [batch, height, width, channels], got rank ${shape.length}`);
    const [, h, w, c] = shape as [unknown, number, number, number];
    if (h % this.size !== 0 || w % this.size !== 0) {
      throw new Error(`patches: image ${h}x${w} is not divisible into ${this.size}x${this.size} patches`);
    }
    return [h / this.size, w / this.size, c];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const [rows, cols, c] = this.grid(x.shape);
      const s = this.size;
      const split = x.reshape([-1, rows, s, cols, s, c]);
      // [batch, row, in-row, col, in-col, c] -> [batch, row, col, in-row, in-col, c]
      return tf.transpose(split, [0, 1, 3, 2, 4, 5]).reshape([-1, rows * cols, s * s * c]);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'patches');
    const [rows, cols, c] = this.grid(shape);
    return [shape[0]!, rows * cols, this.size * this.size * c];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), size: this.size };
  }
}

/** patches's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const patchesParams = {
  type: 'object',
  additionalProperties: false,
  required: ['size'],
  properties: { size: { type: 'integer', minimum: 1, description: 'Patch side in pixels.' } },
} as const satisfies JsonSchema;
export type PatchesParams = FromSchema<typeof patchesParams>;

export const patchesEntry: BlockEntry<PatchesParams> = {
  type: 'patches',
  description: 'Non-overlapping size x size image patches -> [batch, num_patches, size*size*channels].',
  params: patchesParams,
  create: (params, ctx) => new Patches({ size: params.size, name: ctx.name }),
};

tf.serialization.registerClass(Patches);
