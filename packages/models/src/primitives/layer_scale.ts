import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { resolveAxis, singleShape, singleTensor } from './common.ts';

export interface LayerScaleArgs {
  /** Starting value of every scale (default 1e-5; CaiT 1e-5 to 1e-6 by depth, ResMLP 0.1 to 1e-6). */
  initValue?: number;
  /** The channel axis (default -1). */
  axis?: number;
  name?: string;
}

/** A learned per-channel scale (LayerScale of CaiT and ResMLP): y = x * gamma, gamma starting at init_value. */
export class LayerScale extends tf.layers.Layer {
  static className = 'TesseraLayerScale';
  readonly initValue: number;
  readonly axis: number;
  private gamma?: tf.LayerVariable;

  constructor(args: LayerScaleArgs) {
    super(args);
    this.initValue = args.initValue ?? DEFAULTS.init_value;
    if (!Number.isFinite(this.initValue)) throw new Error(`layer_scale: init_value must be a number, got ${this.initValue}`);
    this.axis = args.axis ?? DEFAULTS.axis;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape, 'layer_scale');
    const size = shape[resolveAxis(this.axis, shape.length, 'layer_scale')];
    if (size == null) throw new Error('layer_scale: the size of the channel axis must be known');
    this.gamma = this.addWeight('gamma', [size], 'float32', tf.initializers.constant({ value: this.initValue }));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const axis = resolveAxis(this.axis, x.rank, 'layer_scale');
      const gamma = this.gamma!.read();
      return tf.mul(x, axis === x.rank - 1 ? gamma : gamma.reshape(x.shape.map((n, i) => (i === axis ? n : 1))));
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'layer_scale');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), initValue: this.initValue, axis: this.axis };
  }
}

/** layer_scale's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const layerScaleParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    init_value: { type: 'number', default: 1e-5, description: 'Starting value of every scale (CaiT 1e-5, ResMLP 0.1 for shallow models).' },
    axis: { type: 'integer', default: -1, description: 'The channel axis.' },
  },
} as const satisfies JsonSchema;
export type LayerScaleParams = FromSchema<typeof layerScaleParams>;
const DEFAULTS = defaultsOf(layerScaleParams);

export const layerScaleEntry: BlockEntry<LayerScaleParams> = {
  type: 'layer_scale',
  description: 'Learned per-channel scale y = x * gamma (LayerScale of CaiT / ResMLP), gamma starting at init_value.',
  params: layerScaleParams,
  create: (params, ctx) => new LayerScale({ initValue: params.init_value, axis: params.axis, name: ctx.name }),
};

tf.serialization.registerClass(LayerScale);
