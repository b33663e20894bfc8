import type { ParamsOf, Transform, TransformEntry } from '@tessera/core/registry';
import { Rng } from '@tessera/core/random';
import { factorBounds, projectiveBatch, samplingOptions, samplingSchema, type AffineRow } from './affine.ts';
import { randomTransform } from './random-transform.ts';

/**
 * random_rotation's params, declared once (core's registry/params.ts). A factor f rotates by a
 * random angle in [-f, f] * 2 pi; a pair [lower, upper] is in the same unit (Keras).
 */
export const randomRotationParams = {
  properties: {
    factor: {
      oneOf: [
        { type: 'number', minimum: 0, maximum: 1 },
        { type: 'array', items: { type: 'number', minimum: -1, maximum: 1 }, minItems: 2, maxItems: 2 },
      ],
      description: 'f rotates by a random angle in [-f * 2 pi, f * 2 pi]; or [lower, upper] (fractions of a full turn)',
    },
    ...samplingSchema,
  },
  required: ['factor'],
  additionalProperties: false,
} as const;
export type RandomRotationParams = ParamsOf<typeof randomRotationParams>;

/**
 * Keras' rotation about the image centre by `angle` radians (counter-clockwise for a positive
 * angle): output (x, y) samples the input at
 * (cos x - sin y + x_offset, sin x + cos y + y_offset), the offsets keeping the centre fixed.
 */
export function rotationRow(angle: number, height: number, width: number): AffineRow {
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const xOffset = (width - 1 - (cos * (width - 1) - sin * (height - 1))) / 2;
  const yOffset = (height - 1 - (sin * (width - 1) + cos * (height - 1))) / 2;
  return [cos, -sin, xOffset, sin, cos, yOffset];
}

/**
 * Rotates each image by its own random angle, like Keras' RandomRotation: the angle is uniform
 * in [lower, upper] * 2 pi (factor f: [-f, f]), bilinear, reflect fill by default.
 */
export function createRandomRotation(params: RandomRotationParams): Transform {
  const [lower, upper] = factorBounds(params.factor);
  if (!(lower <= upper)) throw new Error(`random_rotation: factor [${lower}, ${upper}] must have lower <= upper`);
  const options = samplingOptions(params);
  return randomTransform((x, seed) => {
    const rng = new Rng(seed);
    const [n, height, width] = x.shape;
    const rows = Array.from({ length: n }, () => rotationRow(rng.uniform(lower, upper) * 2 * Math.PI, height, width));
    return projectiveBatch(x, rows, options);
  });
}

export const randomRotationEntry: TransformEntry<RandomRotationParams> = {
  type: 'random_rotation',
  description: 'Random rotation per image about its centre, like Keras RandomRotation (factor in fractions of 2 pi; training only)',
  params: randomRotationParams,
  create: createRandomRotation,
};
