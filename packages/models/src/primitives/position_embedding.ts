import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { initializerSchema, makeInitializer, singleShape, singleTensor, snakeCase, type InitializerName } from './common.ts';

export interface PositionEmbeddingArgs {
  /**
   * Initializer of the [sequence, channels] table: default glorot_uniform, as keras_hub's
   * PositionEmbedding; random_uniform (+-0.05) is Keras' Embedding(num_positions, dim) table,
   * the ViT example's PatchEncoder.
   */
  initializer?: InitializerName;
  seed?: number;
  name?: string;
}

/** Adds a learned embedding of shape [sequence, channels] to every example of [batch, sequence, channels]. */
export class PositionEmbedding extends tf.layers.Layer {
  static className = 'TesseraPositionEmbedding';
  readonly initializer: InitializerName;
  readonly seed: number;
  private embeddings?: tf.LayerVariable;

  constructor(args: PositionEmbeddingArgs) {
    super(args);
    this.initializer = snakeCase(args.initializer ?? DEFAULTS.initializer) as InitializerName;
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape, 'position_embedding');
    const [sequence, channels] = shape.slice(-2);
    if (shape.length !== 3 || sequence == null || channels == null) {
      throw new Error(`position_embedding: expects [batch, sequence, channels] with known sizes, got [${shape}]`);
    }
    this.embeddings = this.addWeight('embeddings', [sequence, channels], 'float32', makeInitializer(this.initializer, this.seed));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.add(singleTensor(inputs), this.embeddings!.read()));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'position_embedding');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), initializer: this.initializer, seed: this.seed };
  }
}

/** position_embedding's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const positionEmbeddingParams = {
  type: 'object',
  additionalProperties: false,
  properties: {
    initializer: {
      ...initializerSchema('glorot_uniform', 'embedding table'),
      description: "Initializer of the table: glorot_uniform (keras_hub's PositionEmbedding) or random_uniform (+-0.05, Keras' Embedding over positions, as in the ViT example).",
    },
  },
} as const satisfies JsonSchema;
export type PositionEmbeddingParams = FromSchema<typeof positionEmbeddingParams>;
const DEFAULTS = defaultsOf(positionEmbeddingParams);

export const positionEmbeddingEntry: BlockEntry<PositionEmbeddingParams> = {
  type: 'position_embedding',
  description: 'Adds a learned [sequence, channels] position table (keras_hub PositionEmbedding, or Keras Embedding with initializer: random_uniform).',
  params: positionEmbeddingParams,
  create: (params, ctx) => new PositionEmbedding({ initializer: params.initializer, seed: ctx.seed, name: ctx.name }),
};

tf.serialization.registerClass(PositionEmbedding);
