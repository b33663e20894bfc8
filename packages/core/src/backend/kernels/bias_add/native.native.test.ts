import { describe, expect, it } from 'vitest';
import { FUSED_KERNELS, referenceBiasAddGrad } from '../index.ts';
import { between, expectClose, runNativeKernel, useNativeBackend } from '../testing.ts';

const requireNative = useNativeBackend();

describe('TesseraBiasAdd(+Grad) on the native backend: TensorFlow BiasAdd (vs the reference)', () => {
  it('TesseraBiasAdd adds along the last axis and TesseraBiasAddGrad sums the rest (TF BiasAdd, BiasAddGrad)', (context) => {
    requireNative(context);
    const x = between(3 * 4 * 5, -2, 2, 110);
    const bias = between(5, -1, 1, 111);
    const [y] = runNativeKernel(FUSED_KERNELS.biasAdd, { x: { values: x, shape: [3, 4, 5] }, bias: { values: bias, shape: [5] } });
    expect(Array.from(y!)).toEqual(Array.from(x, (v, i) => Math.fround(v + bias[i % 5]!)));
    const [dbias] = runNativeKernel(FUSED_KERNELS.biasAddGrad, { dy: { values: x, shape: [3, 4, 5] } });
    expectClose(dbias!, referenceBiasAddGrad(x, 5), () => 1e-5, 'dbias');
  });
});
