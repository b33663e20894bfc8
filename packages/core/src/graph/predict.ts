import * as tf from '@tensorflow/tfjs';
import type { Transform } from '../registry/kinds.ts';

/** Raw images, interleaved NHWC float32 values on the 0..255 scale. */
export interface ImageBatch {
  pixels: Float32Array;
  count: number;
  /** One image's [height, width, channels]. */
  shape: number[];
}

/**
 * The logits of `model` for every image, [count * classes] row-major, after the deterministic
 * (non-random) transforms in order, `batchSize` images per forward pass, leaking no tensor.
 */
export async function predictImages(model: tf.LayersModel, images: ImageBatch, transforms: readonly Transform[], batchSize = 128): Promise<Float32Array> {
  const size = images.shape.reduce((a, b) => a * b, 1);
  const classes = model.outputs[0]!.shape.at(-1)!;
  const logits = new Float32Array(images.count * classes);
  for (let start = 0; start < images.count; start += batchSize) {
    const end = Math.min(images.count, start + batchSize);
    const output = tf.tidy(() => {
      let x = tf.tensor4d(images.pixels.subarray(start * size, end * size), [end - start, ...images.shape] as [number, number, number, number]);
      for (const transform of transforms) if (!transform.random) x = transform.apply(x, { training: false, seed: 0 });
      return model.predict(x) as tf.Tensor;
    });
    logits.set(await output.data(), start * classes);
    output.dispose();
  }
  return logits;
}
