import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { singleShape, singleTensor } from './common.ts';

export interface ReshapeArgs {
  /** The shape of one example (no batch axis); at most one -1, inferred. */
  targetShape: number[];
  name?: string;
}

/** Keras' Reshape: [batch, ...] -> [batch, ...targetShape], row-major. */
export class Reshape extends tf.layers.Layer {
  static className = 'TesseraReshape';
  readonly targetShape: number[];

  constructor(args: ReshapeArgs) {
    super(args);
    const target = args.targetShape;
    if (target.length === 0 || target.some((n) => !Number.isInteger(n) || (n < 1 && n !== -1)) || target.filter((n) => n === -1).length > 1) {
      throw new Error(`reshape: target_shape must be positive integers with at most one -1, got [${target}]`);
    }
    this.targetShape = [...target];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      return x.reshape([x.shape[0]!, ...this.resolve(x.shape)]);
    });
  }

  /** target_shape with its -1 worked out from the input's size. */
  private resolve(shape: tf.Shape): number[] {
    const rest = shape.slice(1);
    if (rest.some((n) => n == null)) throw new Error(`reshape: every axis but the batch must have a known size, got [${shape}]`);
    const size = rest.reduce<number>((a, b) => a * b!, 1);
    const known = this.targetShape.filter((n) => n !== -1).reduce((a, b) => a * b, 1);
    const resolved = this.targetShape.map((n) => (n === -1 ? size / known : n));
    if (resolved.reduce((a, b) => a * b, 1) !== size || resolved.some((n) => !Number.isInteger(n))) {
      throw new Error(`reshape: cannot reshape [${rest}] (${size} values) to [${this.targetShape}]`);
    }
    return resolved;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'reshape');
    return [shape[0]!, ...this.resolve(shape)];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), targetShape: this.targetShape };
  }
}

/** reshape's params, declared once (core's registry/params.ts): the type derives from it. */
export const reshapeParams = {
  type: 'object',
  additionalProperties: false,
  required: ['target_shape'],
  properties: {
    target_shape: {
      type: 'array',
      minItems: 1,
      // 0 and a second -1 are refused by the layer (a located error from the graph builder).
      items: { type: 'integer', minimum: -1 },
      description: 'Shape of one example without the batch axis: positive sizes and at most one -1.',
    },
  },
} as const satisfies JsonSchema;
export type ReshapeParams = FromSchema<typeof reshapeParams>;

export const reshapeEntry: BlockEntry<ReshapeParams> = {
  type: 'reshape',
  description: 'Reshapes each example to target_shape (no batch axis; one -1 is inferred).',
  params: reshapeParams,
  create: (params, ctx) => new Reshape({ targetShape: params.target_shape, name: ctx.name }),
};

tf.serialization.registerClass(Reshape);
