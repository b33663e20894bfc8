import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '@tessera/core/random';
import { CIFAR10_POLICY, RAND_AUGMENT_OPS, createAutoAugment, createRandAugment } from './auto_augment.ts';
import * as ops from './image_ops.ts';

beforeAll(() => tf.setBackend('cpu'));

const img = (height: number, width: number, channels: number, values: number[]): ops.Image => ({ data: Float32Array.from(values), height, width, channels });
const values = (i: ops.Image) => [...i.data].map((v) => Math.round(v * 1000) / 1000);

describe('image ops (golden values by hand, torchvision semantics)', () => {
  it('colour ops blend towards black, gray, the mean, or the smoothed image', () => {
    expect(values(ops.brightness(img(1, 2, 1, [100, 200]), 0.5))).toEqual([50, 100]);
    expect(values(ops.brightness(img(1, 1, 1, [200]), 1.9))).toEqual([255]);
    // Luma of (200, 100, 50): 0.299*200 + 0.587*100 + 0.114*50 = 124.2.
    expect(values(ops.color(img(1, 1, 3, [200, 100, 50]), 0))).toEqual([124.2, 124.2, 124.2]);
    expect(values(ops.color(img(1, 1, 3, [200, 100, 50]), 2))).toEqual([255, 75.8, 0]);
    expect(values(ops.contrast(img(1, 2, 1, [0, 100]), 0.5))).toEqual([25, 75]);
    // 3x3 with 13 in the centre: SMOOTH gives 13*5/13 = 5 there; the border is kept.
    const dot = img(3, 3, 1, [0, 0, 0, 0, 13, 0, 0, 0, 0]);
    expect(values(ops.sharpness(dot, 0))).toEqual([0, 0, 0, 0, 5, 0, 0, 0, 0]);
    expect(values(ops.sharpness(dot, 2))).toEqual([0, 0, 0, 0, 21, 0, 0, 0, 0]);
  });

  it('posterize, solarize, invert, autocontrast, equalize', () => {
    expect(values(ops.posterize(img(1, 3, 1, [200, 63, 255]), 2))).toEqual([192, 0, 192]);
    expect(values(ops.solarize(img(1, 3, 1, [100, 200, 128]), 128))).toEqual([100, 55, 127]);
    expect(values(ops.invert(img(1, 2, 1, [0, 55])))).toEqual([255, 200]);
    expect(values(ops.autoContrast(img(1, 3, 1, [50, 100, 150])))).toEqual([0, 127.5, 255]);
    expect(values(ops.autoContrast(img(1, 2, 1, [7, 7])))).toEqual([7, 7]);
    // 255 pixels at 10 and 255 at 20: step = (510 - 255) // 255 = 1; lut[10] = 0, lut[20] = 255.
    const two = img(1, 510, 1, Array.from({ length: 510 }, (_, i) => (i < 255 ? 10 : 20)));
    expect(new Set(values(ops.equalize(two)))).toEqual(new Set([0, 255]));
    // One pixel of each value: the identity.
    const ramp = img(1, 256, 1, Array.from({ length: 256 }, (_, i) => i));
    expect(values(ops.equalize(ramp))).toEqual(values(ramp));
  });

  it('geometry: translate by whole pixels, shear about the top-left, rotate counter-clockwise about the centre, black fill', () => {
    expect(values(ops.translate(img(1, 3, 1, [1, 2, 3]), 1, 0))).toEqual([0, 1, 2]);
    expect(values(ops.translate(img(1, 3, 1, [1, 2, 3]), -1.6, 0))).toEqual([2, 3, 0]);
    expect(values(ops.translate(img(3, 1, 1, [1, 2, 3]), 0, 1))).toEqual([0, 1, 2]);
    // A dot right of the centre goes above it after 90 degrees counter-clockwise.
    expect(values(ops.rotate(img(3, 3, 1, [0, 0, 0, 0, 0, 9, 0, 0, 0]), 90))).toEqual([0, 9, 0, 0, 0, 0, 0, 0, 0]);
    // Shear x by 1: row y moves right by y pixels.
    expect(values(ops.shear(img(3, 3, 1, [0, 0, 0, 9, 0, 0, 0, 0, 0]), 1, 'x'))).toEqual([0, 0, 0, 0, 9, 0, 0, 0, 0]);
  });

  it("magnitude tables are torchvision's", () => {
    const t = ops.magnitudes(31, 32, 32);
    expect(t.Rotate.values[9]).toBeCloseTo(9, 6);
    expect(t.ShearX.values[9]).toBeCloseTo(0.09, 6);
    expect(t.TranslateX.values[30]).toBeCloseTo((150 / 331) * 32, 6);
    expect(t.Brightness.values[30]).toBeCloseTo(0.9, 6);
    expect(t.Posterize.values.slice(0, 10)).toEqual([8, 8, 8, 8, 7, 7, 7, 7, 7, 7]);
    expect(t.Solarize.values[9]).toBeCloseTo(255 - (9 * 255) / 30, 6);
    expect(ops.magnitudes(10, 32, 32).Posterize.values).toEqual([8, 8, 7, 7, 6, 6, 5, 5, 4, 4]);
  });
});

/** A batch of 3 random-looking 6x5x3 images on the 0..255 scale. */
const batch = () => tf.tensor4d(Float32Array.from({ length: 3 * 6 * 5 * 3 }, (_, i) => (i * 37) % 256), [3, 6, 5, 3]);

describe('rand_augment and auto_augment', () => {
  it('rand_augment applies num_ops ops per image, drawn from the seed (replayed by hand here)', () => {
    const x = batch();
    const out = createRandAugment({ num_ops: 2, magnitude: 9 }).apply(x, { training: true, seed: 1234 });
    const data = x.dataSync() as Float32Array;
    const table = ops.magnitudes(31, 6, 5);
    const rng = new Rng(1234);
    const expected: number[] = [];
    for (let i = 0; i < 3; i++) {
      let image = img(6, 5, 3, [...data.slice(i * 90, (i + 1) * 90)]);
      for (let k = 0; k < 2; k++) {
        const op = RAND_AUGMENT_OPS[rng.int(RAND_AUGMENT_OPS.length)]!;
        const sign = table[op].signed && rng.next() < 0.5 ? -1 : 1;
        image = ops.applyOp(image, op, table[op].values[9]! * sign);
      }
      expected.push(...image.data);
    }
    expect([...(out.dataSync() as Float32Array)]).toEqual(expected);
    const again = createRandAugment({}).apply(x, { training: true, seed: 1234 });
    expect([...again.dataSync()]).toEqual([...out.dataSync()]);
    expect([...createRandAugment({}).apply(x, { training: true, seed: 99 }).dataSync()]).not.toEqual([...out.dataSync()]);
    expect(out.shape).toEqual([3, 6, 5, 3]);
    expect(Math.min(...out.dataSync())).toBeGreaterThanOrEqual(0);
    expect(Math.max(...out.dataSync())).toBeLessThanOrEqual(255);
    tf.dispose([x, out, again]);
  });

  it('auto_augment picks one CIFAR-10 sub-policy per image and applies each op with its probability', () => {
    expect(CIFAR10_POLICY).toHaveLength(25);
    const x = batch();
    const out = createAutoAugment({}).apply(x, { training: true, seed: 7 });
    const data = x.dataSync() as Float32Array;
    const table = ops.magnitudes(10, 6, 5);
    const rng = new Rng(7);
    const expected: number[] = [];
    for (let i = 0; i < 3; i++) {
      let image = img(6, 5, 3, [...data.slice(i * 90, (i + 1) * 90)]);
      for (const [op, p, bin] of CIFAR10_POLICY[rng.int(25)]!) {
        const apply = rng.next() < p;
        const sign = table[op].signed && rng.next() < 0.5 ? -1 : 1;
        if (apply) image = ops.applyOp(image, op, bin === null ? 0 : table[op].values[bin]! * sign);
      }
      expected.push(...image.data);
    }
    expect([...(out.dataSync() as Float32Array)]).toEqual(expected);
    tf.dispose([x, out]);
  });

  it('both pass evaluation batches through unchanged and leak no tensors', () => {
    const x = batch();
    const before = tf.memory().numTensors;
    for (const t of [createRandAugment({}), createAutoAugment({})]) {
      const same = t.apply(x, { training: false, seed: 1 });
      expect([...same.dataSync()]).toEqual([...x.dataSync()]);
      same.dispose();
      t.apply(x, { training: true, seed: 1 }).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(() => createRandAugment({ magnitude: 31 })).toThrow(/below num_magnitude_bins 31/);
    x.dispose();
  });
});
