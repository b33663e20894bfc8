import * as tf from '@tensorflow/tfjs';
import type { BlockEntry } from '@tessera/core/registry';
import { resolveAxis, singleShape, singleTensor } from './common.ts';

export interface GlobalAveragePoolingArgs {
  /** Axis averaged away (default 1: the patches of [batch, patches, channels]). */
  axis?: number;
  name?: string;
}

/** Averages one axis away, like Keras' GlobalAveragePooling1D over the patches. */
export class GlobalAveragePooling extends tf.layers.Layer {
  static className = 'TesseraGlobalAveragePooling';
  readonly axis: number;

  constructor(args: GlobalAveragePoolingArgs) {
    super(args);
    this.axis = args.axis ?? 1;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      return tf.mean(x, resolveAxis(this.axis, x.rank, 'global_average_pooling'));
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'global_average_pooling');
    const axis = resolveAxis(this.axis, shape.length, 'global_average_pooling');
    return shape.filter((_, i) => i !== axis);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axis: this.axis };
  }
}

export const globalAveragePoolingEntry: BlockEntry<{ axis?: number }> = {
  type: 'global_average_pooling',
  description: 'Averages one axis away (default 1, the patches).',
  params: {
    type: 'object',
    additionalProperties: false,
    properties: { axis: { type: 'integer', default: 1, description: 'Axis to average over.' } },
  },
  create: (params, ctx) => new GlobalAveragePooling({ axis: params.axis, name: ctx.name }),
};

tf.serialization.registerClass(GlobalAveragePooling);
