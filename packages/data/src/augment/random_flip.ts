import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type ParamsOf, type Transform, type TransformEntry } from '@tessera/core/registry';
import { Rng } from '@tessera/core/random';
import { randomTransform } from './random-transform.ts';

export type FlipMode = 'horizontal' | 'vertical' | 'horizontal_and_vertical';

/** random_flip's params, declared once (core's registry/params.ts). */
export const randomFlipParams = {
  properties: { mode: { enum: ['horizontal', 'vertical', 'horizontal_and_vertical'], default: 'horizontal' } },
  additionalProperties: false,
} as const;
export type RandomFlipParams = ParamsOf<typeof randomFlipParams>;
const DEFAULTS = defaultsOf(randomFlipParams);

/**
 * Flips the images whose `flip` entry is true along `axis` (2: columns, 1: rows).
 * Horizontal flips use the dedicated FlipLeftRight kernel and a 0/1 blend, not reverse + where:
 * on wasm that is ~10 ms instead of ~180 ms for 128 images of 64x64x3, and x*0 + r*1 stays exact.
 */
export function flipWhere(x: tf.Tensor4D, flip: boolean[], axis: 1 | 2): tf.Tensor4D {
  if (!flip.some(Boolean)) return x.clone();
  return tf.tidy(() => {
    const flipped = axis === 2 ? tf.image.flipLeftRight(x) : tf.reverse(x, 1);
    if (flip.every(Boolean)) return flipped as tf.Tensor4D;
    const chosen = tf.tensor4d(flip.map(Number), [flip.length, 1, 1, 1]);
    return tf.add(tf.mul(x, tf.sub(1, chosen)), tf.mul(flipped, chosen)) as tf.Tensor4D;
  });
}

/** Each image is flipped with probability 1/2 (per axis), like Keras' RandomFlip. */
export function createRandomFlip(params: RandomFlipParams): Transform {
  const mode = params.mode ?? DEFAULTS.mode;
  return randomTransform((x, seed) => {
    const rng = new Rng(seed);
    const draw = () => Array.from({ length: x.shape[0] }, () => rng.next() < 0.5);
    return tf.tidy(() => {
      let out = x;
      if (mode !== 'vertical') out = flipWhere(out, draw(), 2);
      if (mode !== 'horizontal') out = flipWhere(out, draw(), 1);
      return out === x ? x.clone() : out;
    });
  });
}

export const randomFlipEntry: TransformEntry<RandomFlipParams> = {
  type: 'random_flip',
  description: 'Random horizontal and/or vertical flips (training only)',
  params: randomFlipParams,
  create: createRandomFlip,
};
