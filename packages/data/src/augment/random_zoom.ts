import type { ParamsOf, Transform, TransformEntry } from '@tessera/core/registry';
import { Rng } from '@tessera/core/random';
import { affineBatch, factorBounds, samplingOptions, samplingSchema, type AxisAffine } from './affine.ts';
import { randomTransform } from './random-transform.ts';

const factor = {
  oneOf: [
    { type: 'number', minimum: 0, maximum: 1 },
    { type: 'array', items: { type: 'number', minimum: -1, maximum: 1 }, minItems: 2, maxItems: 2 },
  ],
  description: 'f zooms by a random amount in [-f, +f] (positive: out); or [lower, upper]',
} as const;

/**
 * random_zoom's params, declared once (core's registry/params.ts). width_factor defaults to the
 * height's zoom, keeping the aspect ratio (as Keras).
 */
export const randomZoomParams = {
  properties: {
    height_factor: factor,
    width_factor: factor,
    ...samplingSchema,
  },
  required: ['height_factor'],
  additionalProperties: false,
} as const;
export type RandomZoomParams = ParamsOf<typeof randomZoomParams>;

/**
 * The Keras RandomZoom map for zoom factors (zx, zy) (1 = identity, > 1 zooms out) about the
 * image centre: input = z * output + (size - 1) / 2 * (1 - z).
 */
export function zoomMap(zx: number, zy: number, height: number, width: number): AxisAffine {
  return { scaleX: zx, scaleY: zy, shiftX: ((width - 1) / 2) * (1 - zx), shiftY: ((height - 1) / 2) * (1 - zy) };
}

/**
 * Random zoom of each image, height and width independently, like Keras' RandomZoom:
 * zoom = 1 + uniform(lower, upper) per image and axis, bilinear, reflect fill by default.
 */
export function createRandomZoom(params: RandomZoomParams): Transform {
  const [heightLow, heightHigh] = factorBounds(params.height_factor);
  const widthBounds = params.width_factor === undefined ? undefined : factorBounds(params.width_factor);
  const options = samplingOptions(params);
  return randomTransform((x, seed) => {
    const rng = new Rng(seed);
    const [, height, width] = x.shape;
    const maps = Array.from({ length: x.shape[0] }, () => {
      const zy = 1 + rng.uniform(heightLow, heightHigh);
      const zx = widthBounds ? 1 + rng.uniform(widthBounds[0], widthBounds[1]) : zy;
      return zoomMap(zx, zy, height, width);
    });
    return affineBatch(x, maps, options);
  });
}


export const randomZoomEntry: TransformEntry<RandomZoomParams> = {
  type: 'random_zoom',
  description: 'Random zoom in/out per image and axis, like Keras RandomZoom (training only)',
  params: randomZoomParams,
  create: createRandomZoom,
};
