import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type ParamsOf, type Transform, type TransformEntry } from '@tessera/core/registry';
import { Rng } from '@tessera/core/random';

/** Beta(alpha, alpha) draws the mixing weight of each batch. */
const alphaSchema = <D extends number>(fallback: D) =>
  ({
    type: 'number',
    exclusiveMinimum: 0,
    default: fallback,
    description: 'the mixing weight is drawn from Beta(alpha, alpha)',
  }) as const;

/** mixup's and CutMix's params, declared once (core's registry/params.ts). */
export const mixupParams = { properties: { alpha: alphaSchema(0.2) }, additionalProperties: false } as const;
export const cutmixParams = { properties: { alpha: alphaSchema(1) }, additionalProperties: false } as const;
export type MixParams = ParamsOf<typeof mixupParams>;
const MIXUP_DEFAULTS = defaultsOf(mixupParams);
const CUTMIX_DEFAULTS = defaultsOf(cutmixParams);

/** A seeded permutation of [0, n): each image is mixed with partner[i]. */
function partners(rng: Rng, n: number): tf.Tensor1D {
  return tf.tensor1d(rng.shuffle(Int32Array.from({ length: n }, (_, i) => i)), 'int32');
}

/** Mixes labels as `weight * y + (1 - weight) * y[partner]`. */
function mixLabels(yOneHot: tf.Tensor2D, partner: tf.Tensor1D, weight: number): tf.Tensor2D {
  return tf.add(tf.mul(yOneHot, weight), tf.mul(tf.gather(yOneHot, partner), 1 - weight));
}

/**
 * A transform that mixes each batch with a seeded permutation of itself, images and one-hot
 * labels together: `mix` gets the batch, its labels and the batch's Rng, and runs inside a tidy.
 * Images alone (no labels: inference) and evaluation batches pass through unchanged.
 */
function labelMixingTransform(
  mix: (x: tf.Tensor4D, yOneHot: tf.Tensor2D, rng: Rng) => { x: tf.Tensor4D; yOneHot: tf.Tensor2D },
): Transform {
  return {
    random: true,
    outputShape: (inputShape) => inputShape,
    apply: (x) => x.clone(),
    applyWithLabels(x, yOneHot, { training, seed }) {
      if (!training) return { x: x.clone(), yOneHot: yOneHot.clone() };
      const rng = new Rng(seed);
      return tf.tidy(() => mix(x, yOneHot, rng));
    },
  };
}

/** mixup (Zhang et al. 2018): x = w x + (1 - w) x[perm], same for the one-hot labels. */
export function createMixup(params: MixParams): Transform {
  const alpha = params.alpha ?? MIXUP_DEFAULTS.alpha;
  return labelMixingTransform((x, yOneHot, rng) => {
    const weight = rng.beta(alpha, alpha);
    const partner = partners(rng, x.shape[0]);
    return {
      x: tf.add(tf.mul(x, weight), tf.mul(tf.gather(x, partner), 1 - weight)) as tf.Tensor4D,
      yOneHot: mixLabels(yOneHot, partner, weight),
    };
  });
}

/** The box [top, bottom) x [left, right) CutMix pastes, clipped to the image. */
export function cutmixBox(rng: Rng, height: number, width: number, weight: number) {
  const ratio = Math.sqrt(1 - weight);
  const cutH = Math.floor(height * ratio);
  const cutW = Math.floor(width * ratio);
  const centreY = rng.int(height);
  const centreX = rng.int(width);
  const clip = (v: number, size: number) => Math.min(Math.max(v, 0), size);
  return {
    top: clip(centreY - Math.floor(cutH / 2), height),
    bottom: clip(centreY + Math.ceil(cutH / 2), height),
    left: clip(centreX - Math.floor(cutW / 2), width),
    right: clip(centreX + Math.ceil(cutW / 2), width),
  };
}

/**
 * CutMix (Yun et al. 2019): a box of each image is replaced by the same box of its partner;
 * labels mix in proportion to the pasted area (after clipping to the image).
 */
export function createCutmix(params: MixParams): Transform {
  const alpha = params.alpha ?? CUTMIX_DEFAULTS.alpha;
  return labelMixingTransform((x, yOneHot, rng) => {
    const [n, height, width] = x.shape;
    const box = cutmixBox(rng, height, width, rng.beta(alpha, alpha));
    const mask = new Float32Array(height * width);
    for (let r = box.top; r < box.bottom; r++) mask.fill(1, r * width + box.left, r * width + box.right);
    const kept = 1 - ((box.bottom - box.top) * (box.right - box.left)) / (height * width);
    const partner = partners(rng, n);
    const pasted = tf.tensor4d(mask, [1, height, width, 1]);
    return {
      x: tf.add(tf.mul(x, tf.sub(1, pasted)), tf.mul(tf.gather(x, partner), pasted)) as tf.Tensor4D,
      yOneHot: mixLabels(yOneHot, partner, kept),
    };
  });
}

export const mixupEntry: TransformEntry<MixParams> = {
  type: 'mixup',
  description: 'mixup: blend pairs of images and their labels (training only; gives soft labels)',
  params: mixupParams,
  create: createMixup,
};

export const cutmixEntry: TransformEntry<MixParams> = {
  type: 'cutmix',
  description: 'CutMix: paste a box from a partner image, labels by area (training only; gives soft labels)',
  params: cutmixParams,
  create: createCutmix,
};
