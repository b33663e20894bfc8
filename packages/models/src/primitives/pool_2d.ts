import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { intPairSchema, singleShape, singleTensor, toPair, windowOutput, type IntPair } from './common.ts';

export interface Pool2dArgs {
  /** max or average. */
  mode: 'max' | 'average';
  /** Window, an integer or [height, width] (default 2). */
  poolSize?: IntPair;
  /** Default: the pool size (Keras). */
  strides?: IntPair;
  /** Default valid. */
  padding?: 'same' | 'valid';
  name?: string;
}

/**
 * Keras' MaxPooling2D / AveragePooling2D over [batch, h, w, c]; one class for both because
 * they differ only in the reduction. Average pooling with `same` padding averages the values
 * inside the image only, as TensorFlow and Keras do.
 */
export class Pool2d extends tf.layers.Layer {
  static className = 'TesseraPool2d';
  readonly mode: 'max' | 'average';
  readonly poolSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';

  constructor(args: Pool2dArgs) {
    super(args);
    this.mode = args.mode;
    this.poolSize = toPair(args.poolSize ?? DEFAULTS.pool_size, 'pool_2d: pool_size');
    this.strides = toPair(args.strides ?? this.poolSize, 'pool_2d: strides');
    this.padding = args.padding ?? DEFAULTS.padding;
  }

  private check(shape: tf.Shape): void {
    if (shape.length !== 4) throw new Error(`${this.mode}_pool_2d: expects images [batch, height, width, channels], got rank ${shape.length}`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs) as tf.Tensor4D;
      this.check(x.shape);
      const pool = this.mode === 'max' ? tf.maxPool : tf.avgPool;
      return pool(x, this.poolSize, this.strides, this.padding);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, `${this.mode}_pool_2d`);
    this.check(shape);
    const out = [1, 2].map((axis, i) => windowOutput(shape[axis]!, this.poolSize[i]!, this.strides[i]!, this.padding));
    return [shape[0]!, out[0]!, out[1]!, shape[3]!];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), mode: this.mode, poolSize: this.poolSize, strides: this.strides, padding: this.padding };
  }
}

/** max_pool_2d's and average_pool_2d's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const pool2dParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pool_size: intPairSchema('Window: an integer or [height, width].', 2),
    strides: intPairSchema('Step of the window (default: pool_size).'),
    padding: { enum: ['same', 'valid'], default: 'valid', description: 'same keeps ceil(size / stride); valid only full windows.' },
  },
} as const satisfies JsonSchema;
export type Pool2dParams = FromSchema<typeof pool2dParams>;
const DEFAULTS = defaultsOf(pool2dParams);

function poolEntry(mode: 'max' | 'average'): BlockEntry<Pool2dParams> {
  return {
    type: `${mode}_pool_2d`,
    description: `${mode === 'max' ? 'Max' : 'Average'} pooling over [batch, h, w, c] (Keras' ${mode === 'max' ? 'MaxPooling2D' : 'AveragePooling2D'}).`,
    params: pool2dParams,
    create: (params, ctx) => new Pool2d({ mode, poolSize: params.pool_size, strides: params.strides, padding: params.padding, name: ctx.name }),
  };
}

export const maxPool2dEntry = poolEntry('max');
export const averagePool2dEntry = poolEntry('average');

tf.serialization.registerClass(Pool2d);
