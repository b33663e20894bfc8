import * as tf from '@tensorflow/tfjs';
import { defaultsOf, type ParamsOf } from '@tessera/core/registry';

export const fillModeSchema = {
  enum: ['reflect', 'constant', 'wrap', 'nearest'],
  description: 'how points outside the image are filled (reflect: d c b a | a b c d | d c b a)',
} as const;
export type FillMode = (typeof fillModeSchema.enum)[number];

/**
 * The sampling params of Keras' random image layers (RandomZoom, RandomRotation), as written in
 * YAML: their JSON Schema properties, with Keras' defaults (bilinear, reflect, fill value 0).
 */
export const samplingSchema = {
  fill_mode: { ...fillModeSchema, default: 'reflect' },
  interpolation: { enum: ['bilinear', 'nearest'], default: 'bilinear' },
  fill_value: { type: 'number', default: 0 },
} as const;
export type SamplingParams = ParamsOf<{ properties: typeof samplingSchema }>;
export type Interpolation = (typeof samplingSchema.interpolation.enum)[number];
const SAMPLING_DEFAULTS = defaultsOf({ properties: samplingSchema });

/** The sampling options of those params, defaults filled in. */
export function samplingOptions(params: SamplingParams) {
  return {
    interpolation: params.interpolation ?? SAMPLING_DEFAULTS.interpolation,
    fillMode: params.fill_mode ?? SAMPLING_DEFAULTS.fill_mode,
    fillValue: params.fill_value ?? SAMPLING_DEFAULTS.fill_value,
  } as const;
}

/**
 * Per-image axis-aligned affine maps: output pixel (x, y) samples the input at
 * (scaleX * x + shiftX, scaleY * y + shiftY), the convention of tf.image.transform and of
 * Keras' random image layers.
 */
/** A Keras-style random factor: f means [-f, f]; a pair (the schema allows exactly two) is [lower, upper]. */
export type Factor = number | readonly number[];

export function factorBounds(factor: Factor): [number, number] {
  return typeof factor === 'number' ? [-Math.abs(factor), Math.abs(factor)] : [factor[0]!, factor[1]!];
}

export interface AxisAffine {
  scaleX: number;
  scaleY: number;
  shiftX: number;
  shiftY: number;
}

/**
 * Applies `maps` with TensorFlow's ImageProjectiveTransform semantics (what Keras' RandomZoom
 * and friends run), identically on every backend.
 * - Where the backend has no Transform kernel (tfjs-node 4.22), or when asked, the map is applied
 *   as two interpolation-matrix products (`separableAffine`): exact TF semantics.
 * - tfjs-backend-wasm 4.22 maps 'reflect' coordinates wrongly, so there reflect is done as a
 *   symmetric MirrorPad (d c b a | a b c d) followed by a clamped transform. TF reflects the
 *   continuous coordinate about -0.5 and len - 0.5 before interpolating; the symmetric pad holds
 *   exactly those mirrored pixels, so bilinear sampling of the padded image gives the same value.
 *   (With nearest interpolation a sample exactly halfway between two mirrored pixels may round to
 *   the other one: TF rounds after mirroring, this rounds before.)
 * - tfjs-backend-cpu 4.22's Transform returns after the first image of a batch (its return sits
 *   inside the batch loop), so on cpu each image goes through on its own.
 */
export interface AffineOptions {
  interpolation: Interpolation;
  fillMode: FillMode;
  fillValue: number;
  /** Force the matrix-product path (tests compare it with the kernel). */
  method?: 'kernel' | 'matmul';
}

export function affineBatch(
  x: tf.Tensor4D,
  maps: AxisAffine[],
  options: AffineOptions,
): tf.Tensor4D {
  if (options.method === 'matmul' || !tf.getKernel('Transform', tf.getBackend())) return separableAffine(x, maps, options);
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

/** TF's map_coord: where a sample at `coord` reads, for each fill mode (constant: as is). */
export function mapCoordinate(coord: number, size: number, mode: FillMode): number {
  if (mode === 'constant') return coord;
  if (mode === 'nearest') return Math.min(Math.max(coord, 0), size - 1);
  if (size <= 1) return 0;
  let c = coord;
  if (mode === 'reflect') {
    // Reflect [abcd] to [dcba|abcd|dcba].
    const period = 2 * size;
    if (c < 0) {
      c += period * Math.trunc(-c / period);
      c = c < -size ? c + period : -c - 1;
    } else if (c > size - 1) {
      c -= period * Math.trunc(c / period);
      if (c >= size) c = period - c - 1;
    }
  } else {
    // Wrap [abcd] to [abcd|abcd|abcd].
    if (c < 0) c += size * (Math.trunc(-c / (size - 1)) + 1);
    else if (c > size - 1) c -= size * Math.trunc(c / (size - 1));
  }
  return Math.min(Math.max(c, 0), size - 1);
}

/**
 * The [size, size] matrix R with out = R @ in along one axis: row o holds the interpolation
 * weights of the sample at `scale * o + shift` (after TF's coordinate mapping); neighbours
 * outside the image get no weight (constant fill).
 */
export function axisWeights(scale: number, shift: number, size: number, interpolation: Interpolation, mode: FillMode): Float32Array {
  const weights = new Float32Array(size * size);
  const put = (o: number, i: number, w: number) => {
    if (i >= 0 && i < size && w !== 0) weights[o * size + i] = weights[o * size + i]! + w;
  };
  for (let o = 0; o < size; o++) {
    const c = mapCoordinate(scale * o + shift, size, mode);
    if (interpolation === 'nearest') {
      put(o, Math.sign(c) * Math.round(Math.abs(c)), 1); // std::round: halves away from zero
    } else {
      const floor = Math.floor(c);
      put(o, floor, floor + 1 - c);
      put(o, floor + 1, c - floor);
    }
  }
  return weights;
}

/**
 * Axis-aligned maps are separable: out[n] = Ry[n] @ x[n] @ Rx[n]^T per channel. Two batched
 * matrix products, cheap on native backends, and exactly TF's sampling in every fill mode.
 */
export function separableAffine(x: tf.Tensor4D, maps: AxisAffine[], options: AffineOptions): tf.Tensor4D {
  const [n, height, width, channels] = x.shape;
  const rows = new Float32Array(n * height * height);
  const cols = new Float32Array(n * width * width);
  maps.forEach((m, i) => {
    rows.set(axisWeights(m.scaleY, m.shiftY, height, options.interpolation, options.fillMode), i * height * height);
    cols.set(axisWeights(m.scaleX, m.shiftX, width, options.interpolation, options.fillMode), i * width * width);
  });
  return tf.tidy(() => {
    const ry = tf.tensor3d(rows, [n, height, height]);
    const rx = tf.tensor3d(cols, [n, width, width]);
    const alongRows = tf.matMul(ry, tf.reshape(x, [n, height, width * channels]));
    const columnsFirst = tf.reshape(tf.transpose(tf.reshape(alongRows, [n, height, width, channels]), [0, 2, 1, 3]), [n, width, height * channels]);
    const out = tf.transpose(tf.reshape(tf.matMul(rx, columnsFirst), [n, width, height, channels]), [0, 2, 1, 3]) as tf.Tensor4D;
    if (options.fillMode !== 'constant' || options.fillValue === 0) return out;
    // Samples outside the image read the fill value: weight 1 - (row weight sum * column weight sum).
    const inside = tf.mul(tf.reshape(tf.sum(ry, 2), [n, height, 1, 1]), tf.reshape(tf.sum(rx, 2), [n, 1, width, 1]));
    return tf.add(out, tf.mul(tf.sub(1, inside), options.fillValue)) as tf.Tensor4D;
  });
}

/**
 * A general per-image affine map: output pixel (x, y) samples the input at
 * (a0 x + a1 y + a2, b0 x + b1 y + b2), the first six entries of a tf.image.transform row.
 */
export type AffineRow = [a0: number, a1: number, a2: number, b0: number, b1: number, b2: number];

/**
 * Applies general affine maps (rotations: not separable) with TF's ImageProjectiveTransform
 * semantics: each sample's coordinates go through the fill mode's mapping (mapCoordinate), then
 * bilinear (or nearest) interpolation reads its neighbours, a neighbour outside the image being
 * `fillValue`. Written as a plain loop over the pixels, identically on every backend: tfjs-node
 * 4.22 has no Transform kernel, wasm's maps reflect wrongly and cpu's stops after one image (see
 * affineBatch); a gather of every neighbour took seconds per batch of 256 72x72 images on the
 * native backend, this loop ~0.1 s.
 */
export function projectiveBatch(x: tf.Tensor4D, rows: AffineRow[], options: AffineOptions): tf.Tensor4D {
  const [n, height, width, channels] = x.shape;
  const input = x.dataSync() as Float32Array;
  const out = new Float32Array(input.length);
  const fill = options.fillValue;
  const nearest = options.interpolation === 'nearest';
  const imageSize = height * width * channels;
  rows.forEach(([a0, a1, a2, b0, b1, b2], image) => {
    const base = image * imageSize;
    // Where pixel (iy, ix) starts in `input`, or -1 outside the image (it reads fillValue).
    const offset = (iy: number, ix: number) => (iy >= 0 && iy < height && ix >= 0 && ix < width ? base + (iy * width + ix) * channels : -1);
    const taps = [0, 0, 0, 0];
    const weights = [0, 0, 0, 0];
    for (let y = 0; y < height; y++) {
      for (let xo = 0; xo < width; xo++) {
        const at = base + (y * width + xo) * channels;
        const cx = mapCoordinate(a0 * xo + a1 * y + a2, width, options.fillMode);
        const cy = mapCoordinate(b0 * xo + b1 * y + b2, height, options.fillMode);
        let count: number;
        if (nearest) {
          const round = (v: number) => Math.sign(v) * Math.round(Math.abs(v)); // std::round
          taps[0] = offset(round(cy), round(cx));
          weights[0] = 1;
          count = 1;
        } else {
          const fx = Math.floor(cx);
          const fy = Math.floor(cy);
          const dx = cx - fx;
          const dy = cy - fy;
          taps[0] = offset(fy, fx);
          taps[1] = offset(fy, fx + 1);
          taps[2] = offset(fy + 1, fx);
          taps[3] = offset(fy + 1, fx + 1);
          weights[0] = (1 - dy) * (1 - dx);
          weights[1] = (1 - dy) * dx;
          weights[2] = dy * (1 - dx);
          weights[3] = dy * dx;
          count = 4;
        }
        for (let c = 0; c < channels; c++) {
          let value = 0;
          for (let k = 0; k < count; k++) value += weights[k]! * (taps[k]! >= 0 ? input[taps[k]! + c]! : fill);
          out[at + c] = value;
        }
      }
    }
  });
  return tf.tensor4d(out, [n, height, width, channels]);
}
