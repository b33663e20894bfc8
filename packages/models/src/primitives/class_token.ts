import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { initializerSchema, makeInitializer, singleShape, singleTensor, snakeCase, type InitializerName } from './common.ts';

export interface ClassTokenArgs {
  /** Initializer of the [1, 1, channels] token (default zeros, as BERT's and ViT's). */
  initializer?: InitializerName;
  seed?: number;
  name?: string;
}

/** Prepends one learned token: [batch, sequence, channels] -> [batch, sequence + 1, channels]. */
export class ClassToken extends tf.layers.Layer {
  static className = 'TesseraClassToken';
  readonly initializer: InitializerName;
  readonly seed: number;
  private token?: tf.LayerVariable;

  constructor(args: ClassTokenArgs) {
    super(args);
    this.initializer = snakeCase(args.initializer ?? DEFAULTS.initializer) as InitializerName;
    this.seed = args.seed ?? 0;
  }

  private check(shape: tf.Shape): number {
    const channels = shape[2];
    if (shape.length !== 3 || channels == null) throw new Error(`class_token: expects [batch, sequence, channels] with known channels, got [${shape}]`);
    return channels;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const channels = this.check(singleShape(inputShape, 'class_token'));
    this.token = this.addWeight('token', [1, 1, channels], 'float32', makeInitializer(this.initializer, this.seed));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const token = this.token!.read();
      return tf.concat([tf.tile(token, [x.shape[0]!, 1, 1]), x], 1);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'class_token');
    this.check(shape);
    return [shape[0]!, shape[1] == null ? null : shape[1] + 1, shape[2]!];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), initializer: this.initializer, seed: this.seed };
  }
}

/** class_token's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const classTokenParams = {
  type: 'object',
  additionalProperties: false,
  properties: { initializer: initializerSchema('zeros', 'token') },
} as const satisfies JsonSchema;
export type ClassTokenParams = FromSchema<typeof classTokenParams>;
const DEFAULTS = defaultsOf(classTokenParams);

export const classTokenEntry: BlockEntry<ClassTokenParams> = {
  type: 'class_token',
  description: 'Prepends a learned [channels] token to the sequence (ViT/BERT class token).',
  params: classTokenParams,
  create: (params, ctx) => new ClassToken({ initializer: params.initializer, seed: ctx.seed, name: ctx.name }),
};

tf.serialization.registerClass(ClassToken);
