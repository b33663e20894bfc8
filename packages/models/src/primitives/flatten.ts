import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { singleShape, singleTensor } from './common.ts';

/** Keras' Flatten: [batch, ...] -> [batch, product of the rest], row-major. */
export class Flatten extends tf.layers.Layer {
  static className = 'TesseraFlatten';

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      return x.reshape([x.shape[0]!, -1]);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'flatten');
    const rest = shape.slice(1);
    if (rest.some((n) => n == null)) throw new Error(`flatten: every axis but the batch must have a known size, got [${shape}]`);
    return [shape[0]!, rest.reduce<number>((a, b) => a * b!, 1)];
  }
}

/** flatten's params (none), declared once (core's registry/params.ts): the type derives from it. */
export const flattenParams = { type: 'object', additionalProperties: false, properties: {} } as const satisfies JsonSchema;
export type FlattenParams = FromSchema<typeof flattenParams>;

export const flattenEntry: BlockEntry<FlattenParams> = {
  type: 'flatten',
  description: 'Flattens every axis but the batch (row-major, like Keras\' Flatten).',
  params: flattenParams,
  create: (_params, ctx) => new Flatten({ name: ctx.name }),
};

tf.serialization.registerClass(Flatten);
