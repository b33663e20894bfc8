import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { resolveAxis, singleShape, singleTensor } from './common.ts';

export interface SplitArgs {
  /** Number of equal chunks the axis is cut into. */
  chunks: number;
  /** Which chunk to keep (0-based). */
  index: number;
  /** Axis to cut (default -1, the channels). */
  axis?: number;
  name?: string;
}

/** Keeps one of `chunks` equal slices of an axis, like keras.ops.split(x, chunks, axis)[index]. */
export class Split extends tf.layers.Layer {
  static className = 'TesseraSplit';
  readonly chunks: number;
  readonly index: number;
  readonly axis: number;

  constructor(args: SplitArgs) {
    super(args);
    if (!Number.isInteger(args.chunks) || args.chunks < 1) throw new Error(`split: chunks must be a positive integer, got ${args.chunks}`);
    if (!Number.isInteger(args.index) || args.index < 0 || args.index >= args.chunks) {
      throw new Error(`split: index must be in 0..${args.chunks - 1}, got ${args.index}`);
    }
    this.chunks = args.chunks;
    this.index = args.index;
    this.axis = args.axis ?? DEFAULTS.axis;
  }

  /** The resolved axis and the chunk size. */
  private slice(shape: tf.Shape): [number, number] {
    const axis = resolveAxis(this.axis, shape.length, 'split');
    const size = shape[axis];
    if (size == null || size % this.chunks !== 0) {
      throw new Error(`split: axis ${this.axis} of size ${size} does not divide into ${this.chunks} equal chunks`);
    }
    return [axis, size / this.chunks];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const [axis, chunk] = this.slice(x.shape);
      const begin = x.shape.map((_, i) => (i === axis ? this.index * chunk : 0));
      const size = x.shape.map((s, i) => (i === axis ? chunk : s));
      return tf.slice(x, begin, size);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = [...singleShape(inputShape, 'split')];
    const [axis, chunk] = this.slice(shape);
    shape[axis] = chunk;
    return shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), chunks: this.chunks, index: this.index, axis: this.axis };
  }
}

/** split's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const splitParams = {
  type: 'object',
  additionalProperties: false,
  required: ['chunks', 'index'],
  properties: {
    chunks: { type: 'integer', minimum: 1, description: 'Number of equal chunks.' },
    index: { type: 'integer', minimum: 0, description: 'The chunk kept, 0-based.' },
    axis: { type: 'integer', default: -1, description: 'Axis to cut.' },
  },
} as const satisfies JsonSchema;
export type SplitParams = FromSchema<typeof splitParams>;
const DEFAULTS = defaultsOf(splitParams);

export const splitEntry: BlockEntry<SplitParams> = {
  type: 'split',
  description: 'Keeps chunk `index` of `chunks` equal slices along an axis (e.g. the two halves of a gating unit).',
  params: splitParams,
  create: (params, ctx) => new Split({ chunks: params.chunks, index: params.index, axis: params.axis, name: ctx.name }),
};

tf.serialization.registerClass(Split);
