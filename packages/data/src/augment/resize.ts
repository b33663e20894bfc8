import * as tf from '@tensorflow/tfjs';
import type { Transform, TransformEntry } from '@tessera/core/registry';

export interface ResizeParams {
  height: number;
  width: number;
  interpolation?: 'bilinear' | 'nearest';
}

/**
 * Resizes every image like tf.image.resize / Keras' Resizing: half-pixel centers, no corner
 * alignment, no antialiasing.
 */
export function createResize(params: ResizeParams): Transform {
  const { height, width } = params;
  const interpolation = params.interpolation ?? 'bilinear';
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
  params: {
    properties: {
      height: { type: 'integer', minimum: 1 },
      width: { type: 'integer', minimum: 1 },
      interpolation: { enum: ['bilinear', 'nearest'], default: 'bilinear' },
    },
    required: ['height', 'width'],
    additionalProperties: false,
  },
  create: createResize,
};
