import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type ParamsOf, type Transform, type TransformEntry } from '@tessera/core/registry';

/** resize's params, declared once (core's registry/params.ts). */
export const resizeParams = {
  properties: {
    height: { type: 'integer', minimum: 1 },
    width: { type: 'integer', minimum: 1 },
    interpolation: { enum: ['bilinear', 'nearest'], default: 'bilinear' },
  },
  required: ['height', 'width'],
  additionalProperties: false,
} as const;
export type ResizeParams = ParamsOf<typeof resizeParams>;
const DEFAULTS = defaultsOf(resizeParams);

/**
 * Resizes every image like tf.image.resize / Keras' Resizing: half-pixel centers, no corner
 * alignment, no antialiasing.
 */
export function createResize(params: ResizeParams): Transform {
  const { height, width } = params;
  const interpolation = params.interpolation ?? DEFAULTS.interpolation;
  return {
    random: false,
    outputShape: (inputShape) => [height, width, inputShape[2]!],
    apply: (x) =>
      x.shape[1] === height && x.shape[2] === width
        ? x.clone()
        : interpolation === 'bilinear'
          ? tf.image.resizeBilinear(x, [height, width], false, true)
          : tf.image.resizeNearestNeighbor(x, [height, width], false, true),
  };
}

export const resizeEntry: TransformEntry<ResizeParams> = {
  type: 'resize',
  description: 'Resize to height x width (bilinear with half-pixel centers, as tf.image.resize)',
  params: resizeParams,
  create: createResize,
};
