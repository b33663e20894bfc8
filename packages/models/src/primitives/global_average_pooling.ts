import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { resolveAxis, singleShape, singleTensor } from './common.ts';

export interface GlobalAveragePoolingArgs {
  /** Axis or axes averaged away (default 1: the patches of [batch, patches, channels]; [1, 2] for 2-D maps). */
  axis?: number | number[];
  name?: string;
}

/**
 * Averages axes away: Keras' GlobalAveragePooling1D over the patches (axis 1), or
 * GlobalAveragePooling2D over the maps of [batch, h, w, c] (axis [1, 2]).
 */
export class GlobalAveragePooling extends tf.layers.Layer {
  static className = 'TesseraGlobalAveragePooling';
  readonly axis: number | number[];

  constructor(args: GlobalAveragePoolingArgs) {
    super(args);
    this.axis = args.axis ?? DEFAULTS.axis;
  }

  private axes(rank: number): number[] {
    const axes = (Array.isArray(this.axis) ? this.axis : [this.axis]).map((a) => resolveAxis(a, rank, 'global_average_pooling'));
    if (new Set(axes).size !== axes.length) throw new Error(`global_average_pooling: axis [${this.axis}] names an axis twice`);
    return axes;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      return tf.mean(x, this.axes(x.rank));
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'global_average_pooling');
    const axes = this.axes(shape.length);
    return shape.filter((_, i) => !axes.includes(i));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axis: this.axis };
  }
}

/** global_average_pooling's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const globalAveragePoolingParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    axis: {
      oneOf: [{ type: 'integer' }, { type: 'array', items: { type: 'integer' }, minItems: 1 }],
      default: 1,
      description: 'Axis or axes to average over: 1 for token sequences, [1, 2] for 2-D feature maps.',
    },
  },
} as const satisfies JsonSchema;
export type GlobalAveragePoolingParams = FromSchema<typeof globalAveragePoolingParams>;
const DEFAULTS = defaultsOf(globalAveragePoolingParams);

export const globalAveragePoolingEntry: BlockEntry<GlobalAveragePoolingParams> = {
  type: 'global_average_pooling',
  description: 'Averages axes away: 1 (default) the patches of [batch, patches, c]; [1, 2] the maps of [batch, h, w, c].',
  params: globalAveragePoolingParams,
  create: (params, ctx) => new GlobalAveragePooling({ axis: params.axis, name: ctx.name }),
};

tf.serialization.registerClass(GlobalAveragePooling);
