import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Patches } from './patches.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('patches', () => {
  it('orders patches row-major and values (row, column, channel) inside a patch', () => {
    // A 4x6 image with 2 channels whose value encodes its position: 100*row + 10*col + channel.
    const image = Array.from({ length: 4 }, (_, r) => Array.from({ length: 6 }, (_, c) => [0, 1].map((ch) => 100 * r + 10 * c + ch)));
    const y = new Patches({ size: 2 }).apply(tf.tensor4d([image])) as tf.Tensor;
    expect(y.shape).toEqual([1, 6, 8]);
    const patches = (y.arraySync() as number[][][])[0]!;
    // Patch 4 is grid row 1, grid column 1: pixel rows 2-3, columns 2-3.
    expect(patches[4]).toEqual([220, 221, 230, 231, 320, 321, 330, 331]);
    expect(patches[2]).toEqual([40, 41, 50, 51, 140, 141, 150, 151]);
  });

  it('refuses images that do not divide into patches', () => {
    expect(() => new Patches({ size: 3 }).computeOutputShape([null as unknown as number, 8, 8, 3])).toThrow(/not divisible into 3x3 patches/);
  });
});
