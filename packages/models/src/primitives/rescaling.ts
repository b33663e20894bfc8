import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
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
    this.offset = args.offset ?? DEFAULTS.offset;
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

/** rescaling's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const rescalingParams = {
  type: 'object',
  additionalProperties: false,
  required: ['scale'],
  properties: {
    scale: { type: 'number', description: 'Multiplier.' },
    offset: { type: 'number', default: 0, description: 'Added after scaling.' },
  },
} as const satisfies JsonSchema;
export type RescalingParams = FromSchema<typeof rescalingParams>;
const DEFAULTS = defaultsOf(rescalingParams);

export const rescalingEntry: BlockEntry<RescalingParams> = {
  type: 'rescaling',
  description: 'y = x * scale + offset (Keras\' Rescaling; scale: ${1 / 255} maps pixels to [0, 1]).',
  params: rescalingParams,
  create: (params, ctx) => new Rescaling({ scale: params.scale, offset: params.offset, name: ctx.name }),
};

tf.serialization.registerClass(Rescaling);
