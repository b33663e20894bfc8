import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type ParamsOf, type Transform, type TransformEntry } from '@tessera/core/registry';
import { Rng } from '@tessera/core/random';
import { randomTransform } from './random-transform.ts';
import { applyOp, magnitudes, type Image, type OpName } from './image_ops.ts';

/**
 * Runs `perImage` on every image of a float NHWC batch (0..255 values) with one Rng per batch,
 * drawn image by image in order: the same seed gives the same ops on any backend or worker.
 */
function perImageBatch(x: tf.Tensor4D, seed: number, perImage: (img: Image, rng: Rng) => Image): tf.Tensor4D {
  const [n, height, width, channels] = x.shape;
  const data = x.dataSync() as Float32Array;
  const size = height * width * channels;
  const out = new Float32Array(data.length);
  const rng = new Rng(seed);
  for (let i = 0; i < n; i++) {
    const img: Image = { data: data.slice(i * size, (i + 1) * size), height, width, channels };
    out.set(perImage(img, rng).data, i * size);
  }
  return tf.tensor4d(out, x.shape);
}

const sign = (rng: Rng, signed: boolean) => (signed && rng.next() < 0.5 ? -1 : 1);

/** rand_augment's params, declared once (core's registry/params.ts). */
export const randAugmentParams = {
  properties: {
    num_ops: { type: 'integer', minimum: 0, default: 2, description: 'ops applied to each image, in sequence' },
    magnitude: { type: 'integer', minimum: 0, default: 9, description: 'magnitude bin for every op, 0 .. num_magnitude_bins - 1' },
    num_magnitude_bins: { type: 'integer', minimum: 2, default: 31, description: 'bins the magnitude ranges are cut into (torchvision: 31)' },
  },
  additionalProperties: false,
} as const;
export type RandAugmentParams = ParamsOf<typeof randAugmentParams>;
const RAND_AUGMENT_DEFAULTS = defaultsOf(randAugmentParams);

/** RandAugment's op list (torchvision's, which the paper's code follows). */
export const RAND_AUGMENT_OPS: OpName[] = [
  'Identity', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate', 'Brightness',
  'Color', 'Contrast', 'Sharpness', 'Posterize', 'Solarize', 'AutoContrast', 'Equalize',
];

/**
 * RandAugment (Cubuk et al. 2020): each image gets `num_ops` ops drawn uniformly from the
 * standard list, all at magnitude `magnitude` (of `num_magnitude_bins` bins), signed at random
 * where it applies. As torchvision.transforms.RandAugment. Expects 0..255 pixels: put it before
 * `normalize`.
 */
export function createRandAugment(params: RandAugmentParams): Transform {
  const numOps = params.num_ops ?? RAND_AUGMENT_DEFAULTS.num_ops;
  const bins = params.num_magnitude_bins ?? RAND_AUGMENT_DEFAULTS.num_magnitude_bins;
  const magnitude = params.magnitude ?? RAND_AUGMENT_DEFAULTS.magnitude;
  if (magnitude >= bins) throw new RangeError(`rand_augment: magnitude ${magnitude} must be below num_magnitude_bins ${bins}`);
  return randomTransform((x, seed) => {
    const table = magnitudes(bins, x.shape[1], x.shape[2]);
    return perImageBatch(x, seed, (img, rng) => {
      let out = img;
      for (let k = 0; k < numOps; k++) {
        const op = RAND_AUGMENT_OPS[rng.int(RAND_AUGMENT_OPS.length)]!;
        const { values, signed } = table[op];
        out = applyOp(out, op, values[magnitude]! * sign(rng, signed));
      }
      return out;
    });
  });
}

type SubPolicy = [[OpName, number, number | null], [OpName, number, number | null]];

/** AutoAugment's CIFAR-10 policy (Cubuk et al. 2019, as torchvision's AutoAugmentPolicy.CIFAR10): 25 sub-policies of (op, probability, magnitude bin). */
export const CIFAR10_POLICY: SubPolicy[] = [
  [['Invert', 0.1, null], ['Contrast', 0.2, 6]],
  [['Rotate', 0.7, 2], ['TranslateX', 0.3, 9]],
  [['Sharpness', 0.8, 1], ['Sharpness', 0.9, 3]],
  [['ShearY', 0.5, 8], ['TranslateY', 0.7, 9]],
  [['AutoContrast', 0.5, null], ['Equalize', 0.9, null]],
  [['ShearY', 0.2, 7], ['Posterize', 0.3, 7]],
  [['Color', 0.4, 3], ['Brightness', 0.6, 7]],
  [['Sharpness', 0.3, 9], ['Brightness', 0.7, 9]],
  [['Equalize', 0.6, null], ['Equalize', 0.5, null]],
  [['Contrast', 0.6, 7], ['Sharpness', 0.6, 5]],
  [['Color', 0.7, 7], ['TranslateX', 0.5, 8]],
  [['Equalize', 0.3, null], ['AutoContrast', 0.4, null]],
  [['TranslateY', 0.4, 3], ['Sharpness', 0.2, 6]],
  [['Brightness', 0.9, 6], ['Color', 0.2, 8]],
  [['Solarize', 0.5, 2], ['Invert', 0.0, null]],
  [['Equalize', 0.2, null], ['AutoContrast', 0.6, null]],
  [['Equalize', 0.2, null], ['Equalize', 0.6, null]],
  [['Color', 0.9, 9], ['Equalize', 0.6, null]],
  [['AutoContrast', 0.8, null], ['Solarize', 0.2, 8]],
  [['Brightness', 0.1, 3], ['Color', 0.7, 0]],
  [['Solarize', 0.4, 5], ['AutoContrast', 0.9, null]],
  [['TranslateY', 0.9, 9], ['TranslateY', 0.7, 9]],
  [['AutoContrast', 0.9, null], ['Solarize', 0.8, 3]],
  [['Equalize', 0.8, null], ['Invert', 0.1, null]],
  [['TranslateY', 0.7, 9], ['AutoContrast', 0.9, null]],
];

/** auto_augment's params, declared once (core's registry/params.ts). */
export const autoAugmentParams = {
  properties: { policy: { enum: ['cifar10'], default: 'cifar10', description: 'the learned policy (CIFAR-10)' } },
  additionalProperties: false,
} as const;
export type AutoAugmentParams = ParamsOf<typeof autoAugmentParams>;
const AUTO_AUGMENT_DEFAULTS = defaultsOf(autoAugmentParams);

/**
 * AutoAugment with the CIFAR-10 policy: each image gets one of the 25 sub-policies at random;
 * each of its two ops applies with its probability, at its magnitude bin (10 bins), signed at
 * random where it applies. As torchvision.transforms.AutoAugment(CIFAR10). Expects 0..255
 * pixels: put it before `normalize`.
 */
export function createAutoAugment(params: AutoAugmentParams): Transform {
  const policy = params.policy ?? AUTO_AUGMENT_DEFAULTS.policy;
  if (policy !== 'cifar10') throw new RangeError(`auto_augment: unknown policy ${JSON.stringify(policy)} (known: cifar10)`);
  return randomTransform((x, seed) => {
    const table = magnitudes(10, x.shape[1], x.shape[2]);
    return perImageBatch(x, seed, (img, rng) => {
      const subPolicy = CIFAR10_POLICY[rng.int(CIFAR10_POLICY.length)]!;
      let out = img;
      for (const [op, probability, bin] of subPolicy) {
        const apply = rng.next() < probability;
        const signed = sign(rng, table[op].signed);
        if (apply) out = applyOp(out, op, bin === null ? 0 : table[op].values[bin]! * signed);
      }
      return out;
    });
  });
}

export const randAugmentEntry: TransformEntry<RandAugmentParams> = {
  type: 'rand_augment',
  description: 'RandAugment: num_ops random ops per image at one magnitude (training only; expects 0..255 pixels, so before normalize)',
  params: randAugmentParams,
  create: createRandAugment,
};

export const autoAugmentEntry: TransformEntry<AutoAugmentParams> = {
  type: 'auto_augment',
  description: 'AutoAugment with the learned CIFAR-10 policy: one of 25 two-op sub-policies per image (training only; expects 0..255 pixels, so before normalize)',
  params: autoAugmentParams,
  create: createAutoAugment,
};
