import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FUSED_KERNELS, erf, referenceGeluExact } from '../index.ts';
import { useNativeBackend, between, expectClose, runNativeKernel } from '../testing.ts';

const requireNative = useNativeBackend();

describe('TesseraGeluExact as a TensorFlow custom op (vs the reference)', () => {
  it('TesseraGeluExact gives Keras exact gelu and its derivative, to float32 precision, at any size', (context) => {
    requireNative(context);
    const special = Float32Array.from([0, -0, 1e-8, -1e-8, 1, -1, 3, -3, 5.5, -5.5, 9, -9, 40, -40, 1e4, -1e4, 3e38, -3e38]);
    // 262147 values: many thread shards and a scalar tail after the last whole packet.
    for (const x of [special, between(1, -4, 4, 1), between(37, -6, 6, 2), between(262147, -12, 12, 3)]) {
      const [y, dydx] = runNativeKernel(FUSED_KERNELS.geluExact, { x: { values: x, shape: [x.length] } });
      const reference = referenceGeluExact(x);
      // erf is Eigen's rational approximation (3 ulp), as in TF's own Erf kernel.
      expectClose(y!, reference.y, (i) => 2e-7 + 3e-7 * Math.abs(x[i]!), `y at size ${x.length}`);
      expectClose(dydx!, reference.dydx, () => 3e-7, `dydx at size ${x.length}`);
    }
  });

  it('TesseraGeluExact keeps a shape of any rank', (context) => {
    requireNative(context);
    const [y, dydx] = tf.tidy(() => (tf.engine().runKernel(FUSED_KERNELS.geluExact, { x: tf.ones([2, 3, 5]) }) as tf.Tensor[]).map((t) => t.shape));
    expect([y, dydx]).toEqual([[2, 3, 5], [2, 3, 5]]);
  });
});
