import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUSED_KERNELS, dropoutKeeps, referenceDropout } from '../index.ts';
import { useWasmBackend, runWasmKernel } from '../testing.ts';
import { randomValues } from '../../wasm/test-helpers.ts';

beforeAll(useWasmBackend);

describe('TesseraDropout on wasm (vs the reference)', () => {
  it('Dropout: keeps exactly the units dropoutKeeps keeps, scales them bit for bit (-0 included), at rates 0, 0.2, 0.5, 0.9', () => {
    for (const rate of [0, 0.2, 0.5, 0.9]) {
      for (const [size, seed] of [[1, 5], [7, -1], [1001, 123456789], [1006, 3], [128 * 64 + 1, 2 ** 31 - 1], [4096, 0]] as const) {
        const values = randomValues(size, seed + 7);
        const x = tf.tensor1d(values);
        const [y] = runWasmKernel(FUSED_KERNELS.dropout, { x }, { rate, seed });
        x.dispose();
        const keeps = dropoutKeeps(size, rate, seed);
        const want = referenceDropout(values, rate, seed);
        let kept = 0;
        for (let i = 0; i < size; i++) {
          if (!Object.is(y![i], want[i])) expect.fail(`rate ${rate}, size ${size}, seed ${seed}: unit ${i} is ${y![i]}, want ${want[i]}`);
          if (keeps[i]) kept++;
          expect(y![i] !== 0).toBe(keeps[i] === 1);
        }
        if (size >= 4096) expect(Math.abs(kept / size - (1 - rate))).toBeLessThan(0.03);
      }
    }
  });

  it('Dropout applied twice with the same attrs drops the same units (its own gradient)', () => {
    const x = tf.ones([3, 5, 7]);
    const [first] = runWasmKernel(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 99 });
    const [second] = runWasmKernel(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 99 });
    const [other] = runWasmKernel(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 100 });
    x.dispose();
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    expect(new Set(first)).toEqual(new Set([0, 2]));
  });
});
