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

/**
 * Applies `maps` with TensorFlow's ImageProjectiveTransform semantics (what Keras' RandomZoom
 * and friends run), identically on every backend. Two TF.js kernel bugs are worked around:
 * - tfjs-backend-wasm 4.22 maps 'reflect' coordinates wrongly, so reflect is done as a
 *   symmetric MirrorPad (d c b a | a b c d) followed by a clamped transform. TF reflects the
 *   continuous coordinate about -0.5 and len - 0.5 before interpolating; the symmetric pad holds
 *   exactly those mirrored pixels, so bilinear sampling of the padded image gives the same value.
 *   (With nearest interpolation a sample exactly halfway between two mirrored pixels may round to
 *   the other one: TF rounds after mirroring, this rounds before.)
 * - tfjs-backend-cpu 4.22's Transform returns after the first image of a batch (its return sits
 *   inside the batch loop), so on cpu each image goes through on its own.
 */
export function affineBatch(
  x: tf.Tensor4D,
  maps: AxisAffine[],
  options: { interpolation: Interpolation; fillMode: FillMode; fillValue: number },
): tf.Tensor4D {
  return tf.tidy(() => {
    const [, height, width] = x.shape;
    let source = x;
    let padX = 0;
    let padY = 0;
    let fillMode = options.fillMode;
    if (fillMode === 'reflect') {
      // One extra pixel covers the bilinear neighbour; a symmetric pad may not exceed the size.
      const need = (axis: 'X' | 'Y', size: number) =>
        Math.min(size, Math.ceil(Math.max(0, ...maps.map((m) => overshoot(m[`scale${axis}`], m[`shift${axis}`], size)))) + 1);
      padX = need('X', width);
      padY = need('Y', height);
      source = tf.mirrorPad(x, [[0, 0], [padY, padY], [padX, padX], [0, 0]], 'symmetric');
      // Beyond the pad (only for zooms out past 2x) the nearest padded pixel is taken.
      fillMode = 'nearest';
    }
    const matrices = tf.tensor2d(
      maps.flatMap((m) => [m.scaleX, 0, m.shiftX + padX, 0, m.scaleY, m.shiftY + padY, 0, 0]),
      [maps.length, 8],
    );
    const transform = (images: tf.Tensor4D, rows: tf.Tensor2D) =>
      tf.image.transform(images, rows, options.interpolation, fillMode, options.fillValue, [height, width]);
    if (tf.getBackend() !== 'cpu' || maps.length === 1) return transform(source, matrices);
    const images = tf.split(source, maps.length, 0);
    const rows = tf.split(matrices, maps.length, 0);
    return tf.concat(images.map((image, i) => transform(image as tf.Tensor4D, rows[i] as tf.Tensor2D)), 0);
  });
}

/** How far outside [0, size - 1] the map `scale * i + shift` samples, at most. */
function overshoot(scale: number, shift: number, size: number): number {
  const ends = [shift, scale * (size - 1) + shift];
  return Math.max(-Math.min(...ends), Math.max(...ends) - (size - 1));
}
