import type * as tf from '@tensorflow/tfjs';
import type { Transform } from '@tessera/core/registry';

/**
 * A random augmentation that keeps each example's shape and acts in training only (evaluation
 * gets a copy of the batch): `augment` receives the batch and its seed, the seed tree's
 * (run, epoch, batch, transform index) leaf (docs/architecture.md, Seeds).
 */
export function randomTransform(augment: (x: tf.Tensor4D, seed: number) => tf.Tensor4D): Transform {
  return {
    random: true,
    outputShape: (inputShape) => inputShape,
    apply: (x, { training, seed }) => (training ? augment(x, seed) : x.clone()),
  };
}
