import * as tf from '@tensorflow/tfjs';
import type { BlockEntry } from '@tessera/core/registry';
import { singleShape, singleTensor } from './common.ts';

export interface RescalingArgs {
  /** y = x * scale + offset. */
  scale: number;
  /** Default 0. */
  offset?: number;
  name?: string;
}

/** Keras' Rescaling: y = x * scale + offset (e.g. scale 1/255 maps pixels to [0, 1]). */
export class Rescaling extends tf.layers.Layer {
  static className = 'TesseraRescaling';
  readonly scale: number;
  readonly offset: number;

  constructor(args: RescalingArgs) {
    super(args);
    this.scale = args.scale;
    this.offset = args.offset ?? 0;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const scaled = tf.mul(singleTensor(inputs), this.scale);
      return this.offset === 0 ? scaled : tf.add(scaled, this.offset);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'rescaling');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale, offset: this.offset };
  }
}

export const rescalingEntry: BlockEntry<{ scale: number; offset?: number }> = {
  type: 'rescaling',
  description: 'y = x * scale + offset (Keras\' Rescaling; scale: ${1 / 255} maps pixels to [0, 1]).',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['scale'],
    properties: {
      scale: { type: 'number', description: 'Multiplier.' },
      offset: { type: 'number', default: 0, description: 'Added after scaling.' },
    },
  },
  create: (params, ctx) => new Rescaling({ scale: params.scale, offset: params.offset, name: ctx.name }),
};

tf.serialization.registerClass(Rescaling);
