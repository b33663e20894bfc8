import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Conv2d } from './conv2d.ts';
import { Pool2d } from './pool_2d.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * A direct convolution by the definition: Keras' kernel [kh, kw, c / groups, filters], output
 * channel f reading input group floor(f / (filters / groups)), TF's `same` padding (the extra
 * row/column at the end), dilation spreading the taps.
 */
function naiveConv(x: number[][][][], kernel: number[][][][], bias: number[], stride: number, padding: 'same' | 'valid', dilation: number, groups: number): number[][][][] {
  const [h, w, c] = [x[0]!.length, x[0]![0]!.length, x[0]![0]![0]!.length];
  const [kh, kw, perGroup, filters] = [kernel.length, kernel[0]!.length, kernel[0]![0]!.length, kernel[0]![0]![0]!.length];
  expect(perGroup).toBe(c / groups);
  const [eh, ew] = [(kh - 1) * dilation + 1, (kw - 1) * dilation + 1];
  const out = (size: number, e: number) => (padding === 'same' ? Math.ceil(size / stride) : Math.floor((size - e) / stride) + 1);
  const [oh, ow] = [out(h, eh), out(w, ew)];
  const pad = (size: number, o: number, e: number) => (padding === 'same' ? Math.floor(Math.max((o - 1) * stride + e - size, 0) / 2) : 0);
  const [ph, pw] = [pad(h, oh, eh), pad(w, ow, ew)];
  return x.map((image) =>
    Array.from({ length: oh }, (_, i) =>
      Array.from({ length: ow }, (_, j) =>
        Array.from({ length: filters }, (_, f) => {
          const group = Math.floor(f / (filters / groups));
          let sum = bias[f]!;
          for (let a = 0; a < kh; a++)
            for (let b = 0; b < kw; b++)
              for (let k = 0; k < perGroup; k++) {
                const y = i * stride + a * dilation - ph;
                const xx = j * stride + b * dilation - pw;
                if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
                sum += image[y]![xx]![group * perGroup + k]! * kernel[a]![b]![k]![f]!;
              }
          return sum;
        }),
      ),
    ),
  );
}

describe('conv2d', () => {
  it.each([
    { filters: 4, kernel: 3, stride: 1, padding: 'valid', dilation: 1, groups: 1 },
    { filters: 4, kernel: 2, stride: 2, padding: 'same', dilation: 1, groups: 1 },
    { filters: 6, kernel: 3, stride: 1, padding: 'same', dilation: 2, groups: 3 },
    { filters: 6, kernel: 5, stride: 2, padding: 'same', dilation: 1, groups: 6 },
    { filters: 12, kernel: 3, stride: 1, padding: 'valid', dilation: 1, groups: 6 },
    { filters: 4, kernel: 3, stride: 1, padding: 'valid', dilation: 1, groups: 2 },
  ] as const)('equals the definition: $filters filters, kernel $kernel, stride $stride, $padding, dilation $dilation, groups $groups', (c) => {
    const channels = c.groups === 2 ? 4 : 6;
    const layer = new Conv2d({ filters: c.filters, kernelSize: c.kernel, strides: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups, biasInitializer: 'glorot_uniform', seed: 4 });
    const x = tf.randomNormal([2, 7, 6, channels], 0, 1, 'float32', 2);
    const y = layer.apply(x) as tf.Tensor;
    const [kernel, bias] = layer.getWeights();
    expect(kernel!.shape).toEqual([c.kernel, c.kernel, channels / c.groups, c.filters]);
    const want = naiveConv(x.arraySync() as number[][][][], kernel!.arraySync() as number[][][][], Array.from(bias!.dataSync()), c.stride, c.padding, c.dilation, c.groups);
    expect(y.shape).toEqual([2, want[0]!.length, want[0]![0]!.length, c.filters]);
    expect(y.shape).toEqual(layer.computeOutputShape(x.shape));
    const got = (y.arraySync() as number[][][][]).flat(3);
    want.flat(3).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 4));
  });

  it('refuses channels or filters that do not divide into the groups', () => {
    expect(() => new Conv2d({ filters: 5, kernelSize: 3, groups: 2 })).toThrow('filters (5) must be divisible by groups (2)');
    expect(() => new Conv2d({ filters: 4, kernelSize: 3, groups: 2 }).apply(tf.zeros([1, 4, 4, 3]))).toThrow('input channels (3) must be divisible by groups (2)');
  });
});

describe('max_pool_2d / average_pool_2d', () => {
  it('take the max / mean of each window; same-padded averages count only pixels inside', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
    expect(Array.from((new Pool2d({ mode: 'max', poolSize: 2, strides: 1 }).apply(x) as tf.Tensor).dataSync())).toEqual([5, 6, 8, 9]);
    // 2x2 windows, stride 2, same: [1 2 4 5], [3 6], [7 8], [9].
    expect(Array.from((new Pool2d({ mode: 'average', poolSize: 2, padding: 'same' }).apply(x) as tf.Tensor).dataSync())).toEqual([3, 4.5, 7.5, 9]);
  });
});
