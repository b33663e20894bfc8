import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.ts';
import { disposeModel } from '../graph/build.ts';
import { importModel, MODEL_FILE } from '../graph/io.ts';
import { predictImages, type ImageBatch } from '../graph/predict.ts';
import type { Transform } from '../registry/kinds.ts';
import { checkModelMetadata, type ModelMetadata } from './metadata.ts';
import { recordedModelPlugins } from './model-plugins.ts';

/** A model directory loaded with its metadata checked (the transforms are restored by the caller). */
export async function loadModelDir(dir: string, where = dir): Promise<{ model: tf.LayersModel; metadata: ModelMetadata }> {
  let loaded: Awaited<ReturnType<typeof importModel>>;
  try {
    loaded = await importModel(dir);
  } catch (error) {
    const message = (error as Error).message;
    // A layer class nobody registered: most likely one from a plugin that was not loaded.
    const unknown = /^Unknown layer: (\S+?)\./.exec(message)?.[1];
    if (unknown) {
      const plugins = recordedModelPlugins(dir);
      throw new ConfigError({
        message: `cannot load a model from ${where}/${MODEL_FILE}: its layer class ${unknown} is not registered`,
        hint: plugins.length > 0
          ? `it was trained with the plugin(s) ${plugins.join(', ')}: load them with --plugin PATH (or list them in tessera.config.yaml)`
          : 'if it comes from a plugin, load the plugin with --plugin PATH (or list it in tessera.config.yaml)',
      });
    }
    throw new ConfigError({ message: `cannot load a model from ${where}/${MODEL_FILE}: ${message}` });
  }
  try {
    return { model: loaded.model, metadata: checkModelMetadata(loaded.metadata, where) };
  } catch (error) {
    disposeModel(loaded.model);
    throw error;
  }
}

/** One image's top-k classes. */
export interface TopK {
  classes: string[];
  indices: number[];
  probabilities: number[];
}

/**
 * A loaded model ready for inference: raw uint8-scale images in, class probabilities out, with
 * the training run's deterministic preprocessing (normalization with the saved statistics;
 * random augmentations never run). `exp predict`, `exp serve` and `exp evaluate` share it.
 */
export class Predictor {
  readonly numClasses: number;
  /** Whether the model's outputs are logits (softmax applied here) or already probabilities. */
  readonly fromLogits: boolean;

  constructor(
    readonly model: tf.LayersModel,
    readonly metadata: ModelMetadata,
    readonly transforms: readonly Transform[],
  ) {
    this.numClasses = model.outputs[0]!.shape.at(-1)!;
    const loss = (metadata.config.train as { loss?: { from_logits?: boolean } } | undefined)?.loss;
    this.fromLogits = loss?.from_logits !== false;
  }

  get classes(): string[] {
    return this.metadata.classes;
  }

  /** [height, width, channels] of one raw input image. */
  get rawShape(): [number, number, number] {
    return this.metadata.rawShape as [number, number, number];
  }

  /** The model's outputs for every image, [count * classes] row-major. */
  outputs(images: ImageBatch, batchSize = 128): Promise<Float32Array> {
    const expected = this.rawShape.join('x');
    if (images.shape.join('x') !== expected) throw new Error(`images are ${images.shape.join('x')}, the model takes ${expected}`);
    return predictImages(this.model, images, this.transforms, batchSize);
  }

  /** Class probabilities for every image, [count * classes] row-major (each row sums to 1). */
  async probabilities(images: ImageBatch, batchSize = 128): Promise<Float32Array> {
    const outputs = await this.outputs(images, batchSize);
    return this.fromLogits ? softmaxRows(outputs, this.numClasses) : outputs;
  }

  /** The k most probable classes of row `row` of `probabilities`. */
  topK(probabilities: Float32Array, row: number, k: number): TopK {
    const values = probabilities.subarray(row * this.numClasses, (row + 1) * this.numClasses);
    const indices = Array.from(values.keys()).sort((a, b) => values[b]! - values[a]! || a - b).slice(0, Math.max(1, k));
    return {
      indices,
      classes: indices.map((i) => this.classes[i] ?? `class_${i}`),
      probabilities: indices.map((i) => values[i]!),
    };
  }

  dispose(): void {
    disposeModel(this.model);
  }
}

/** Row-wise softmax in float64 (max subtracted), so it matches an independent computation to 1e-7. */
export function softmaxRows(values: Float32Array, width: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let start = 0; start < values.length; start += width) {
    let max = -Infinity;
    for (let i = 0; i < width; i++) max = Math.max(max, values[start + i]!);
    let sum = 0;
    for (let i = 0; i < width; i++) sum += Math.exp(values[start + i]! - max);
    for (let i = 0; i < width; i++) out[start + i] = Math.exp(values[start + i]! - max) / sum;
  }
  return out;
}
