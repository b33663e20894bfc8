import * as tf from '@tensorflow/tfjs';
import type { BlockEntry } from '@tessera/core/registry';
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

export const flattenEntry: BlockEntry<Record<string, never>> = {
  type: 'flatten',
  description: 'Flattens every axis but the batch (row-major, like Keras\' Flatten).',
  params: { type: 'object', additionalProperties: false, properties: {} },
  create: (_params, ctx) => new Flatten({ name: ctx.name }),
};

tf.serialization.registerClass(Flatten);
