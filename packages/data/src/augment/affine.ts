import * as tf from '@tensorflow/tfjs';

export type FillMode = 'reflect' | 'constant' | 'wrap' | 'nearest';
export type Interpolation = 'bilinear' | 'nearest';

export const fillModeSchema = {
  enum: ['reflect', 'constant', 'wrap', 'nearest'],
  description: 'how points outside the image are filled (reflect: d c b a | a b c d | d c b a)',
};

/**
 * Per-image axis-aligned affine maps: output pixel (x, y) samples the input at
 * (scaleX * x + shiftX, scaleY * y + shiftY), the convention of tf.image.transform and of
 * Keras' random image layers.
 */
export interface AxisAffine {
  scaleX: number;
  scaleY: number;
  shiftX: number;
  shiftY: number;
}

export function affineBatch(
  x: tf.Tensor4D,
  maps: AxisAffine[],
  options: { interpolation: Interpolation; fillMode: FillMode; fillValue: number },
): tf.Tensor4D {
  return tf.tidy(() => {
    const matrices = tf.tensor2d(
      maps.flatMap((m) => [m.scaleX, 0, m.shiftX, 0, m.scaleY, m.shiftY, 0, 0]),
      [maps.length, 8],
    );
    const transform = (images: tf.Tensor4D, rows: tf.Tensor2D) =>
      tf.image.transform(images, rows, options.interpolation, options.fillMode, options.fillValue);
    // tfjs-backend-cpu 4.22's Transform kernel returns after the first image of a batch (its
    // return sits inside the batch loop), so there each image goes through on its own.
    if (tf.getBackend() !== 'cpu' || maps.length === 1) return transform(x, matrices);
    const images = tf.split(x, maps.length, 0);
    const rows = tf.split(matrices, maps.length, 0);
    return tf.concat(images.map((image, i) => transform(image as tf.Tensor4D, rows[i] as tf.Tensor2D)), 0);
  });
}
