import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, Registries } from '@tessera/core';

/*
 * A Tessera plugin: one module that registers its entries through the same `register` call the
 * built-ins use. An experiment loads it with `plugins: [./affine.ts]` (relative to the experiment
 * file), or every experiment of a project does through tessera.config.yaml's `plugins:`.
 *
 * The block is ResMLP's Affine (Touvron et al. 2021, timm's `Affine`): a per-channel
 * y = alpha * x + beta that replaces LayerNorm in ResMLP, alpha starting at `init_alpha`
 * (1 by default) and beta at 0.
 */

export interface AffineArgs {
  initAlpha?: number;
  name?: string;
}

export class Affine extends tf.layers.Layer {
  // Unique across every registered class: the saved model names its layers by this.
  static className = 'ExampleAffine';
  readonly initAlpha: number;
  private alpha?: tf.LayerVariable;
  private beta?: tf.LayerVariable;

  constructor(args: AffineArgs) {
    super(args);
    this.initAlpha = args.initAlpha ?? 1;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1];
    if (channels == null) throw new Error('affine: the channel axis (the last) must have a known size');
    this.alpha = this.addWeight('alpha', [channels], 'float32', tf.initializers.constant({ value: this.initAlpha }));
    this.beta = this.addWeight('beta', [channels], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      return tf.add(tf.mul(x, this.alpha!.read()), this.beta!.read());
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), initAlpha: this.initAlpha };
  }
}

tf.serialization.registerClass(Affine);

export const affineEntry: BlockEntry<{ init_alpha?: number }> = {
  type: 'affine',
  description: "ResMLP's Affine: per-channel y = alpha * x + beta (alpha from init_alpha, beta from 0).",
  params: {
    type: 'object',
    additionalProperties: false,
    properties: { init_alpha: { type: 'number', default: 1, description: 'Starting value of every alpha.' } },
  },
  create: (params, ctx) => new Affine({ initAlpha: params.init_alpha, name: ctx.name }),
};

/** What Tessera calls when it loads this module. */
export function register(registries: Registries): void {
  registries.blocks.register(affineEntry);
}
