import { defaultsOf, type ParamsOf, type Transform, type TransformEntry } from '@tessera/core/registry';
import { Rng } from '@tessera/core/random';
import { affineBatch, fillModeSchema, type FillMode } from './affine.ts';
import { randomTransform } from './random-transform.ts';

/** random_crop's params, declared once (core's registry/params.ts). */
export const randomCropParams = {
  properties: {
    padding: { type: 'integer', minimum: 0 },
    fill_mode: { ...fillModeSchema, default: 'constant' },
    fill_value: { type: 'number', default: 0 },
  },
  required: ['padding'],
  additionalProperties: false,
} as const;
export type RandomCropParams = ParamsOf<typeof randomCropParams>;
const DEFAULTS = defaultsOf(randomCropParams);

/**
 * Pads each image by `padding` on every side and crops it back to its size at a random offset:
 * the same as shifting it by a random whole number of pixels in [-padding, padding] per axis.
 * Done as that shift, so no padded copy is materialised.
 */
export function createRandomCrop(params: RandomCropParams): Transform {
  const padding = params.padding;
  const options = { interpolation: 'nearest', fillMode: params.fill_mode ?? DEFAULTS.fill_mode, fillValue: params.fill_value ?? DEFAULTS.fill_value } as const;
  return randomTransform((x, seed) => {
    if (padding === 0) return x.clone();
    const rng = new Rng(seed);
    const shift = () => rng.int(2 * padding + 1) - padding;
    const maps = Array.from({ length: x.shape[0] }, () => ({ scaleX: 1, scaleY: 1, shiftX: shift(), shiftY: shift() }));
    return affineBatch(x, maps, options);
  });
}

export const randomCropEntry: TransformEntry<RandomCropParams> = {
  type: 'random_crop',
  description: 'Pad by `padding` and crop back at a random offset (training only)',
  params: randomCropParams,
  create: createRandomCrop,
};
