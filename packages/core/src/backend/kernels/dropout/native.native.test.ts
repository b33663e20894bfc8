import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FUSED_KERNELS, dropoutKeeps, referenceDropout } from '../index.ts';
import { useNativeBackend, between, runNativeKernel } from '../testing.ts';

const requireNative = useNativeBackend();

describe('TesseraDropout as a TensorFlow custom op (vs the reference)', () => {
  it('TesseraDropout is bit-identical to the reference (mask, scale, -0 and NaN), for any size, rate and seed', (context) => {
    requireNative(context);
    for (const size of [1, 2, 3, 1001, 262145]) {
      const x = between(size, -3, 3, size);
      x[0] = Number.NaN;
      for (const rate of [0, 0.1, 0.2, 0.5, 0.9]) {
        for (const seed of [0, 1, -1, 12345, 2147483647, -2147483648]) {
          const [y] = runNativeKernel(FUSED_KERNELS.dropout, { x: { values: x, shape: [size] } }, { rate, seed });
          const reference = referenceDropout(x, rate, seed);
          const mismatch = y!.findIndex((v, i) => !Object.is(v, reference[i]));
          expect(mismatch, `size ${size}, rate ${rate}, seed ${seed}: [${mismatch}] is ${y![mismatch]}, expected ${reference[mismatch]}`).toBe(-1);
        }
      }
    }
  });

  it('TesseraDropout drops the fraction the rate asks for, and the mask is dropoutKeeps', (context) => {
    requireNative(context);
    const size = 128 * 64 * 256 + 1;
    const x = new Float32Array(size).fill(1);
    for (const rate of [0.2, 0.5]) {
      const [y] = runNativeKernel(FUSED_KERNELS.dropout, { x: { values: x, shape: [size] } }, { rate, seed: 7 });
      const keeps = dropoutKeeps(size, rate, 7);
      let dropped = 0;
      for (let i = 0; i < size; i++) {
        if ((y![i] !== 0) !== (keeps[i] === 1)) expect.fail(`unit ${i}: kept ${y![i] !== 0}, dropoutKeeps says ${keeps[i]}`);
        if (y![i] === 0) dropped++;
      }
      // Binomial: the standard deviation of the fraction is sqrt(rate (1 - rate) / size) < 4e-4.
      expect(Math.abs(dropped / size - rate)).toBeLessThan(2e-3);
    }
  });

  it('TesseraDropout with a new seed every call holds no memory per seed', (context) => {
    requireNative(context);
    // Eager TensorFlow caches a kernel instance per distinct attr set, forever: a seed attr cost
    // ~2 KB per new seed (~76 MiB here). The op takes its seed as a tensor instead.
    const x = tf.ones([16]);
    const calls = (first: number) => {
      for (let i = 0; i < 40000; i++) tf.tidy(() => void tf.engine().runKernel(FUSED_KERNELS.dropout, { x }, { rate: 0.2, seed: first + i }));
    };
    calls(0);
    const before = process.memoryUsage().rss;
    calls(1e6);
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(24);
    x.dispose();
  });
});
