/**
 * The image operations of AutoAugment and RandAugment (Cubuk et al. 2019/2020), on one float
 * HWC image with 0..255 values, following torchvision's tensor implementations
 * (torchvision.transforms.functional): the same op list, magnitude tables, fill (black),
 * nearest-neighbour geometry and blending. Hand-written in plain loops, not TF.js ops, because
 * every image of a batch gets its own ops: per-image TF.js kernels cost more in dispatch than
 * the 32x32 arithmetic, and plain loops give the same numbers on every backend and worker.
 */

export interface Image {
  data: Float32Array;
  height: number;
  width: number;
  channels: number;
}

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
const like = (img: Image, data: Float32Array): Image => ({ ...img, data });

/** degenerate + factor * (img - degenerate), clamped (PIL's ImageEnhance blend). */
function blend(img: Image, degenerate: (i: number) => number, factor: number): Image {
  const out = new Float32Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const d = degenerate(i);
    out[i] = clamp(d + factor * (img.data[i]! - d));
  }
  return like(img, out);
}

/** ITU-R 601-2 luma per pixel (grayscale images are their own luma). */
function luma(img: Image): Float32Array {
  const { data, channels } = img;
  const n = img.height * img.width;
  const out = new Float32Array(n);
  for (let p = 0; p < n; p++) out[p] = channels >= 3 ? 0.299 * data[p * channels]! + 0.587 * data[p * channels + 1]! + 0.114 * data[p * channels + 2]! : data[p * channels]!;
  return out;
}

export function brightness(img: Image, factor: number): Image {
  return blend(img, () => 0, factor);
}

/** Saturation: towards the image's own grayscale. */
export function color(img: Image, factor: number): Image {
  if (img.channels < 3) return img;
  const gray = luma(img);
  return blend(img, (i) => gray[Math.floor(i / img.channels)]!, factor);
}

/** Towards the mean gray level of the whole image. */
export function contrast(img: Image, factor: number): Image {
  const gray = luma(img);
  let sum = 0;
  for (const g of gray) sum += g;
  const mean = sum / gray.length;
  return blend(img, () => mean, factor);
}

/** Towards the image smoothed by PIL's SMOOTH kernel [[1,1,1],[1,5,1],[1,1,1]]/13 (the border stays as is). */
export function sharpness(img: Image, factor: number): Image {
  const { data, height: h, width: w, channels: c } = img;
  const smooth = Float32Array.from(data);
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++)
      for (let k = 0; k < c; k++) {
        let s = 0;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += data[((y + dy) * w + (x + dx)) * c + k]! * (dy === 0 && dx === 0 ? 5 : 1);
        smooth[(y * w + x) * c + k] = s / 13;
      }
  return blend(img, (i) => smooth[i]!, factor);
}

export function posterize(img: Image, bits: number): Image {
  const mask = (0xff << (8 - bits)) & 0xff;
  return like(img, img.data.map((v) => Math.floor(clamp(v)) & mask));
}

export function solarize(img: Image, threshold: number): Image {
  return like(img, img.data.map((v) => (v >= threshold ? 255 - v : v)));
}

export function invert(img: Image): Image {
  return like(img, img.data.map((v) => 255 - v));
}

/** Each channel stretched to 0..255 (a constant channel is left alone). */
export function autoContrast(img: Image): Image {
  const { data, channels: c } = img;
  const out = Float32Array.from(data);
  for (let k = 0; k < c; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = k; i < data.length; i += c) (lo = Math.min(lo, data[i]!)), (hi = Math.max(hi, data[i]!));
    if (hi <= lo) continue;
    const scale = 255 / (hi - lo);
    for (let i = k; i < data.length; i += c) out[i] = clamp((data[i]! - lo) * scale);
  }
  return like(img, out);
}

/** Histogram equalisation per channel, PIL's algorithm (as torchvision's `equalize`). */
export function equalize(img: Image): Image {
  const { data, channels: c } = img;
  const out = Float32Array.from(data);
  for (let k = 0; k < c; k++) {
    const hist = new Array<number>(256).fill(0);
    for (let i = k; i < data.length; i += c) hist[Math.floor(clamp(data[i]!))]!++;
    const nonzero = hist.filter((v) => v > 0);
    const step = Math.floor((nonzero.reduce((a, b) => a + b, 0) - nonzero[nonzero.length - 1]!) / 255);
    if (step === 0) continue;
    const lut = new Array<number>(256);
    let cum = Math.floor(step / 2);
    for (let v = 0; v < 256; v++) {
      lut[v] = Math.min(255, Math.floor(cum / step));
      cum += hist[v]!;
    }
    for (let i = k; i < data.length; i += c) out[i] = lut[Math.floor(clamp(data[i]!))]!;
  }
  return like(img, out);
}

/**
 * An affine warp with nearest-neighbour sampling and black fill: output pixel (x, y) reads the
 * input at `inverse(x, y)` (pixel-centre coordinates).
 */
function warp(img: Image, inverse: (x: number, y: number) => [number, number]): Image {
  const { data, height: h, width: w, channels: c } = img;
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const [sx, sy] = inverse(x + 0.5, y + 0.5);
      const ix = Math.floor(sx);
      const iy = Math.floor(sy);
      if (ix < 0 || iy < 0 || ix >= w || iy >= h) continue;
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = data[(iy * w + ix) * c + k]!;
    }
  return like(img, out);
}

/** Shifts the content right/down by dx/dy pixels (whole pixels, as torchvision rounds them). */
export function translate(img: Image, dx: number, dy: number): Image {
  const tx = Math.trunc(dx);
  const ty = Math.trunc(dy);
  return warp(img, (x, y) => [x - tx, y - ty]);
}

/** Shear about the top-left corner (torchvision's RandAugment uses center [0, 0]): x' = x + s*y, or y' = y + s*x. */
export function shear(img: Image, amount: number, axis: 'x' | 'y'): Image {
  return axis === 'x' ? warp(img, (x, y) => [x - amount * y, y]) : warp(img, (x, y) => [x, y - amount * x]);
}

/** Rotation by `degrees` counter-clockwise about the image centre (PIL/torchvision convention). */
export function rotate(img: Image, degrees: number): Image {
  const t = (degrees * Math.PI) / 180;
  const cx = img.width / 2;
  const cy = img.height / 2;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  // Inverse of a counter-clockwise rotation on screen (y down) is a clockwise one.
  return warp(img, (x, y) => [cx + cos * (x - cx) - sin * (y - cy), cy + sin * (x - cx) + cos * (y - cy)]);
}

export type OpName =
  | 'Identity'
  | 'ShearX'
  | 'ShearY'
  | 'TranslateX'
  | 'TranslateY'
  | 'Rotate'
  | 'Brightness'
  | 'Color'
  | 'Contrast'
  | 'Sharpness'
  | 'Posterize'
  | 'Solarize'
  | 'AutoContrast'
  | 'Equalize'
  | 'Invert';

const linspace = (a: number, b: number, n: number) => Array.from({ length: n }, (_, i) => (n === 1 ? a : a + ((b - a) * i) / (n - 1)));

/**
 * torchvision's magnitude table for `bins` bins and an image of `height x width`: each op's
 * magnitudes and whether a random sign applies.
 */
export function magnitudes(bins: number, height: number, width: number): Record<OpName, { values: number[]; signed: boolean }> {
  const none = { values: new Array<number>(bins).fill(0), signed: false };
  return {
    Identity: none,
    ShearX: { values: linspace(0, 0.3, bins), signed: true },
    ShearY: { values: linspace(0, 0.3, bins), signed: true },
    TranslateX: { values: linspace(0, (150 / 331) * width, bins), signed: true },
    TranslateY: { values: linspace(0, (150 / 331) * height, bins), signed: true },
    Rotate: { values: linspace(0, 30, bins), signed: true },
    Brightness: { values: linspace(0, 0.9, bins), signed: true },
    Color: { values: linspace(0, 0.9, bins), signed: true },
    Contrast: { values: linspace(0, 0.9, bins), signed: true },
    Sharpness: { values: linspace(0, 0.9, bins), signed: true },
    Posterize: { values: Array.from({ length: bins }, (_, i) => 8 - Math.round(i / ((bins - 1) / 4))), signed: false },
    Solarize: { values: linspace(255, 0, bins), signed: false },
    AutoContrast: none,
    Equalize: none,
    Invert: none,
  };
}

/** Applies one named op with its (signed) magnitude. */
export function applyOp(img: Image, op: OpName, magnitude: number): Image {
  switch (op) {
    case 'Identity':
      return img;
    case 'ShearX':
      return shear(img, magnitude, 'x');
    case 'ShearY':
      return shear(img, magnitude, 'y');
    case 'TranslateX':
      return translate(img, magnitude, 0);
    case 'TranslateY':
      return translate(img, 0, magnitude);
    case 'Rotate':
      return rotate(img, magnitude);
    case 'Brightness':
      return brightness(img, 1 + magnitude);
    case 'Color':
      return color(img, 1 + magnitude);
    case 'Contrast':
      return contrast(img, 1 + magnitude);
    case 'Sharpness':
      return sharpness(img, 1 + magnitude);
    case 'Posterize':
      return posterize(img, magnitude);
    case 'Solarize':
      return solarize(img, magnitude);
    case 'AutoContrast':
      return autoContrast(img);
    case 'Equalize':
      return equalize(img);
    case 'Invert':
      return invert(img);
  }
}
