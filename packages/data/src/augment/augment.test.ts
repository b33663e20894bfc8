import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@tessera/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { cutmixEntry, mixupEntry } from './mix.ts';
import { Normalize } from './normalize.ts';
import { createRandomCrop } from './random_crop.ts';
import { createRandomFlip, flipWhere } from './random_flip.ts';
import { createRandomZoom, zoomMap } from './random_zoom.ts';
import { affineBatch, projectiveBatch, type AffineRow } from './affine.ts';
import { createRandomRotation, rotationRow } from './random_rotation.ts';
import { createResize } from './resize.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** [n, h, w, c] with distinct values: image i pixel (y, x) channel k = 1000 i + 100 k + 10 y + x. */
function ramp(n: number, h: number, w: number, c: number): tf.Tensor4D {
  const data = new Float32Array(n * h * w * c);
  let i = 0;
  for (let b = 0; b < n; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) data[i++] = 1000 * b + 100 * k + 10 * y + x;
  return tf.tensor4d(data, [n, h, w, c]);
}
const train = (seed: number) => ({ training: true, seed });
const values = (t: tf.Tensor) => t.arraySync() as number[][][][];

describe('random_flip', () => {
  it('reverses the columns of the chosen images only', () => {
    const x = ramp(2, 3, 4, 2);
    const out = values(flipWhere(x, [true, false], 2));
    const input = values(x);
    expect(out[0]!.map((row) => row.map((px) => px[0]))).toEqual(input[0]!.map((row) => [...row].reverse().map((px) => px[0])));
    expect(out[1]).toEqual(input[1]);
  });

  it('flips about half the images, reproducibly from the seed, and not in inference', () => {
    const x = ramp(64, 2, 3, 1);
    const flip = createRandomFlip({ mode: 'horizontal' });
    const a = values(flip.apply(x, train(5)));
    expect(values(flip.apply(x, train(5)))).toEqual(a);
    const input = values(x);
    const flipped = a.filter((image, i) => JSON.stringify(image) !== JSON.stringify(input[i]));
    for (const [i, image] of a.entries()) {
      const reversed = input[i]!.map((row) => [...row].reverse());
      expect([JSON.stringify(input[i]), JSON.stringify(reversed)]).toContain(JSON.stringify(image));
    }
    expect(flipped.length).toBeGreaterThan(16);
    expect(flipped.length).toBeLessThan(48);
    expect(values(flip.apply(x, { training: false, seed: 5 }))).toEqual(input);
  });
});

describe('resize', () => {
  it('keeps a constant image constant', () => {
    const out = createResize({ height: 7, width: 5 }).apply(tf.fill([2, 3, 3, 3], 42) as tf.Tensor4D, train(0));
    expect(out.shape).toEqual([2, 7, 5, 3]);
    for (const v of out.dataSync()) expect(v).toBeCloseTo(42, 4);
  });

  it('matches bilinear interpolation with half-pixel centers, computed by hand', () => {
    // Output pixel j samples the input at (j + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25,
    // clamped to [0, 1]: weights of the second pixel 0, 0.25, 0.75, 1.
    const x = tf.tensor4d([0, 10, 20, 30], [1, 2, 2, 1]);
    const out = createResize({ height: 4, width: 4 }).apply(x, train(0));
    const w = [0, 0.25, 0.75, 1];
    const expected = w.map((wy) => w.map((wx) => 20 * wy + 10 * wx));
    const got = (out.arraySync() as number[][][][])[0]!.map((row) => row.map((px) => px[0]!));
    got.forEach((row, r) => row.forEach((v, c) => expect(v).toBeCloseTo(expected[r]![c]!, 5)));
  });
});

describe('resize against an independent bilinear', () => {
  /** TF's half-pixel bilinear, written out for one channel-last image. */
  function bilinear(src: Float32Array, h: number, w: number, c: number, oh: number, ow: number): Float32Array {
    const out = new Float32Array(oh * ow * c);
    const sample = (o: number, scale: number, size: number) => {
      const s = Math.max(0, (o + 0.5) * scale - 0.5);
      const lo = Math.min(Math.floor(s), size - 1);
      return { lo, hi: Math.min(lo + 1, size - 1), t: s - Math.floor(s) };
    };
    for (let y = 0; y < oh; y++) {
      const sy = sample(y, h / oh, h);
      for (let x = 0; x < ow; x++) {
        const sx = sample(x, w / ow, w);
        for (let k = 0; k < c; k++) {
          const at = (yy: number, xx: number) => src[(yy * w + xx) * c + k]!;
          const top = at(sy.lo, sx.lo) + (at(sy.lo, sx.hi) - at(sy.lo, sx.lo)) * sx.t;
          const bottom = at(sy.hi, sx.lo) + (at(sy.hi, sx.hi) - at(sy.hi, sx.lo)) * sx.t;
          out[(y * ow + x) * c + k] = top + (bottom - top) * sy.t;
        }
      }
    }
    return out;
  }

  it('matches it when upsampling 5x7 to 12x9 and downsampling to 3x4', () => {
    const src = Float32Array.from({ length: 5 * 7 * 3 }, (_, i) => (i * 53) % 256);
    const x = tf.tensor4d(src, [1, 5, 7, 3]);
    for (const [oh, ow] of [[12, 9], [3, 4]] as const) {
      const got = createResize({ height: oh, width: ow }).apply(x, train(0)).dataSync();
      const expected = bilinear(src, 5, 7, 3, oh, ow);
      got.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 3));
    }
  });
});

describe('random_zoom', () => {
  it('is the identity for a zero factor', () => {
    const x = ramp(3, 5, 6, 3);
    const out = createRandomZoom({ height_factor: 0, width_factor: 0 }).apply(x, train(1));
    expect(out.dataSync()).toEqual(x.dataSync());
  });

  it('zooms about the centre with bilinear sampling and reflect fill', () => {
    const row = tf.tensor4d([0, 10, 20, 30], [1, 1, 4, 1]);
    const options = { interpolation: 'bilinear', fillMode: 'reflect', fillValue: 0 } as const;
    // Zoom in x2: input x = 0.5 x + 0.75.
    expect([...affineBatch(row, [zoomMap(0.5, 1, 1, 4)], options).dataSync()]).toEqual([7.5, 12.5, 17.5, 22.5]);
    // Zoom out x2: input x = 2 x - 1.5 = -1.5, 0.5, 2.5, 4.5; reflect (d c b a | a b c d | d c b a)
    // maps -1.5 to 0.5 and 4.5 to 2.5.
    expect([...affineBatch(row, [zoomMap(2, 1, 1, 4)], options).dataSync()]).toEqual([5, 5, 25, 25]);
  });

  it('draws height and width zooms independently within the factor, reproducibly', () => {
    const x = ramp(8, 8, 8, 1);
    const zoom = createRandomZoom({ height_factor: 0.2, width_factor: 0.2 });
    const a = zoom.apply(x, train(3)).dataSync();
    expect(zoom.apply(x, train(3)).dataSync()).toEqual(a);
    expect(zoom.apply(x, train(4)).dataSync()).not.toEqual(a);
    expect(zoom.apply(x, { training: false, seed: 3 }).dataSync()).toEqual(x.dataSync());
  });
});

describe('affine sampling on every backend', () => {
  // tfjs-backend-wasm 4.22 reflects coordinates wrongly and tfjs-backend-cpu 4.22 transforms only
  // the first image of a batch: affineBatch must still give TensorFlow's semantics, which the cpu
  // kernel implements for a single image (a port of TF's ImageProjectiveTransform).
  it('matches the single-image cpu kernel on cpu, wasm and native, kernel and matrix paths, every fill mode', async () => {
    const n = 6, h = 9, w = 7;
    const data = Float32Array.from({ length: n * h * w * 2 }, (_, i) => (i * 37) % 251);
    // Zooms from 0.53x to 1.68x; none puts a sample exactly halfway between two pixels, where
    // nearest + reflect may round to the other mirrored neighbour (see affineBatch).
    const maps = Array.from({ length: n }, (_, i) => zoomMap(0.53 + i * 0.23, 1.57 - i * 0.19, h, w));
    const backends = ['cpu'];
    for (const candidate of ['wasm', 'tensorflow'] as const) {
      try {
        await selectBackend(candidate, () => {});
        backends.push(tf.getBackend());
      } catch {
        // Not installed here (the native backend needs scripts/setup-tensorflow.sh): skipped.
      }
    }
    for (const fillMode of ['reflect', 'constant', 'nearest', 'wrap'] as const) {
      for (const interpolation of ['bilinear', 'nearest'] as const) {
        await tf.setBackend('cpu');
        const x = tf.tensor4d(data, [n, h, w, 2]);
        const reference = maps.flatMap((m, i) => [
          ...tf.image.transform(x.slice(i, 1), tf.tensor2d([[m.scaleX, 0, m.shiftX, 0, m.scaleY, m.shiftY, 0, 0]]), interpolation, fillMode).dataSync(),
        ]);
        for (const backend of backends) {
          // Without a Transform kernel (native) both requests take the matrix path.
          for (const method of ['kernel', 'matmul'] as const) {
            await tf.setBackend(backend);
            const got = affineBatch(tf.tensor4d(data, [n, h, w, 2]), maps, { interpolation, fillMode, fillValue: 0, method }).dataSync();
            got.forEach((v, i) => expect(Math.abs(v - reference[i]!), `${backend} ${method} ${fillMode} ${interpolation} at ${i}`).toBeLessThan(1e-3));
          }
        }
      }
    }
    await tf.setBackend('cpu');
  });
});

describe('the matrix path', () => {
  it('reproduces TF exactly, halfway ties and a nonzero constant fill included', () => {
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 5 * 6 }, (_, i) => i + 1), [2, 5, 6, 1]);
    // Zoom 1.5 about the centre samples exactly between pixels; shift 2.5 pushes samples outside.
    const maps = [zoomMap(1.5, 1.5, 5, 6), { scaleX: 1, scaleY: 1, shiftX: 2.5, shiftY: -1 }];
    for (const fillMode of ['reflect', 'constant', 'wrap', 'nearest'] as const) {
      for (const interpolation of ['nearest', 'bilinear'] as const) {
        const options = { interpolation, fillMode, fillValue: fillMode === 'constant' ? 7 : 0 };
        const reference = maps.flatMap((m, i) => [
          ...tf.image.transform(x.slice(i, 1), tf.tensor2d([[m.scaleX, 0, m.shiftX, 0, m.scaleY, m.shiftY, 0, 0]]), interpolation, fillMode, options.fillValue).dataSync(),
        ]);
        const got = affineBatch(x, maps, { ...options, method: 'matmul' }).dataSync();
        // The cpu kernel rounds halves up (Math.round), TF away from zero (std::round): they
        // agree here, as no sample falls on a negative half.
        got.forEach((v, i) => expect(v, `${fillMode} ${interpolation} at ${i}`).toBeCloseTo(reference[i]!, 4));
      }
    }
  });
});

describe('random_crop', () => {
  it('shifts every image by whole pixels within the padding, filling with zeros', () => {
    const x = tf.add(ramp(16, 5, 5, 1), 1) as tf.Tensor4D; // no zero pixel inside the images
    const out = values(createRandomCrop({ padding: 2 }).apply(x, train(9)));
    const input = values(x);
    const shifts = new Set<string>();
    out.forEach((image, i) => {
      const match = [-2, -1, 0, 1, 2].flatMap((dy) => [-2, -1, 0, 1, 2].map((dx) => [dy, dx] as const)).filter(([dy, dx]) =>
        image.every((row, r) => row.every((px, c) => px[0] === (input[i]![r + dy]?.[c + dx]?.[0] ?? 0))),
      );
      expect(match.length).toBe(1);
      shifts.add(match[0]!.join());
    });
    expect(shifts.size).toBeGreaterThan(3);
  });
});

describe('normalize', () => {
  it('maps the adapted images to zero mean and unit variance per channel', () => {
    const bytes = Uint8Array.from({ length: 4 * 2 * 3 * 3 }, (_, i) => (i * 37) % 256);
    const normalize = new Normalize();
    const state = normalize.adapt({ bytes, count: 4, height: 2, width: 3, channels: 3, offset: 0, stride: 18 });
    // The same images as NHWC floats.
    const nhwc = new Float32Array(bytes.length);
    for (let i = 0; i < 4; i++) for (let c = 0; c < 3; c++) for (let p = 0; p < 6; p++) nhwc[i * 18 + p * 3 + c] = bytes[i * 18 + c * 6 + p]!;
    const out = normalize.apply(tf.tensor4d(nhwc, [4, 2, 3, 3]));
    const { mean, variance } = tf.moments(out, [0, 1, 2]);
    for (const m of mean.dataSync()) expect(m).toBeCloseTo(0, 5);
    for (const v of variance.dataSync()) expect(v).toBeCloseTo(1, 4);
    const fixed = new Normalize({ mean: [1, 2, 3], variance: [4, 5, 6] });
    expect(fixed.adapt({ bytes, count: 4, height: 2, width: 3, channels: 3, offset: 0, stride: 18 })).toEqual({ mean: [1, 2, 3], variance: [4, 5, 6] });
    fixed.restore(state);
    expect(fixed.apply(tf.tensor4d(nhwc, [4, 2, 3, 3])).dataSync()).toEqual(out.dataSync());
  });
});

describe('mixup and cutmix', () => {
  // Image i is the constant i, label i: after mixing, each image's mean must equal the
  // expectation of its soft label, and the soft labels must sum to one.
  for (const entry of [mixupEntry, cutmixEntry]) {
    it(`${entry.type} mixes images and labels by the same weights, reproducibly`, () => {
      const n = 8;
      const x = tf.mul(tf.range(0, n).reshape([n, 1, 1, 1]), tf.ones([n, 6, 6, 1])) as tf.Tensor4D;
      const y = tf.oneHot(tf.range(0, n, 1, 'int32'), n).toFloat() as tf.Tensor2D;
      const t = entry.create({ alpha: 1 });
      const before = tf.memory().numTensors;
      const out = t.applyWithLabels!(x, y, train(11));
      expect(tf.memory().numTensors).toBe(before + 2);
      const means = tf.mean(out.x, [1, 2, 3]).dataSync();
      const expectations = tf.matMul(out.yOneHot, tf.range(0, n).reshape([n, 1])).dataSync();
      means.forEach((m, i) => expect(m).toBeCloseTo(expectations[i]!, 4));
      for (const s of tf.sum(out.yOneHot, 1).dataSync()) expect(s).toBeCloseTo(1, 5);
      expect(out.x.dataSync()).not.toEqual(x.dataSync());
      expect(t.applyWithLabels!(x, y, train(11)).x.dataSync()).toEqual(out.x.dataSync());
      expect(t.applyWithLabels!(x, y, { training: false, seed: 11 }).x.dataSync()).toEqual(x.dataSync());
    });
  }
});

describe('random_rotation', () => {
  const options = (fillMode: 'reflect' | 'constant' | 'wrap' | 'nearest', interpolation: 'bilinear' | 'nearest' = 'bilinear') =>
    ({ interpolation, fillMode, fillValue: fillMode === 'constant' ? 7 : 0 }) as const;

  it("samples as TF's ImageProjectiveTransform (the cpu kernel, one image at a time) in every fill mode", () => {
    const [n, h, w] = [3, 9, 7];
    const data = Float32Array.from({ length: n * h * w * 2 }, (_, i) => (i * 37) % 251);
    const x = tf.tensor4d(data, [n, h, w, 2]);
    const rows = [0.3, -1.1, 2.6].map((angle) => rotationRow(angle, h, w));
    for (const mode of ['reflect', 'constant', 'wrap', 'nearest'] as const) {
      for (const interpolation of ['bilinear', 'nearest'] as const) {
        const got = projectiveBatch(x, rows, options(mode, interpolation)).dataSync();
        const images = tf.split(x, n, 0);
        const want = tf.concat(
          images.map((image, i) => tf.image.transform(image as tf.Tensor4D, tf.tensor2d([[...rows[i]!, 0, 0]]), interpolation, mode, options(mode).fillValue)),
          0,
        ).dataSync();
        // Nearest interpolation may round a sample sitting exactly on .5 the other way (see affineBatch); none does here.
        want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 3));
      }
    }
  });

  it('equals the separable path for axis-aligned maps', () => {
    const x = ramp(2, 6, 5, 1);
    const maps = [zoomMap(0.7, 1.3, 6, 5), zoomMap(1.6, 0.8, 6, 5)];
    const rows = maps.map((m) => [m.scaleX, 0, m.shiftX, 0, m.scaleY, m.shiftY] as AffineRow);
    for (const mode of ['reflect', 'constant'] as const) {
      const want = affineBatch(x, maps, { ...options(mode), method: 'matmul' }).dataSync();
      projectiveBatch(x, rows, options(mode)).dataSync().forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 3));
    }
  });

  it('turns a square image a quarter turn counter-clockwise for factor 0.25 (Keras: positive = counter-clockwise)', () => {
    const x = ramp(1, 4, 4, 1);
    const out = values(createRandomRotation({ factor: [0.25, 0.25] }).apply(x, train(1)))[0]!;
    const input = values(x)[0]!;
    // Counter-clockwise by 90 degrees: output (y, x) = input (x, 3 - y) (np.rot90).
    for (let y = 0; y < 4; y++) for (let xo = 0; xo < 4; xo++) expect(out[y]![xo]![0]).toBeCloseTo(input[xo]![3 - y]![0]!, 3);
  });

  it('draws angles within factor * 2 pi per image, reproducibly; identity at inference and for factor 0', () => {
    const x = ramp(4, 8, 8, 1);
    const rotate = createRandomRotation({ factor: 0.02 });
    const a = rotate.apply(x, train(3)).dataSync();
    expect(rotate.apply(x, train(3)).dataSync()).toEqual(a);
    expect(rotate.apply(x, train(4)).dataSync()).not.toEqual(a);
    expect(rotate.apply(x, { training: false, seed: 3 }).dataSync()).toEqual(x.dataSync());
    createRandomRotation({ factor: 0 }).apply(x, train(3)).dataSync().forEach((v, i) => expect(v).toBeCloseTo(x.dataSync()[i]!, 3));
  });
});
