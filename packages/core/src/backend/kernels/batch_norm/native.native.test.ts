import { describe, expect, it } from 'vitest';
import { FUSED_KERNELS, referenceBatchNorm, referenceBatchNormGrad } from '../index.ts';
import { between, expectClose, runNativeKernel, useNativeBackend } from '../testing.ts';

const requireNative = useNativeBackend();

describe('TesseraBatchNorm(+Grad) on the native backend: TensorFlow FusedBatchNormV3 (vs the reference)', () => {
  it('TesseraBatchNorm and TesseraBatchNormGrad (TF FusedBatchNormV3 and its gradient) match the reference', (context) => {
    requireNative(context);
    for (const [k, [rows, columns]] of [[2, 3], [37, 16], [4096, 64]].entries()) {
      const x = between(rows! * columns!, 1, 5, 70 + k);
      const dy = between(rows! * columns!, -1, 1, 80 + k);
      const gamma = between(columns!, 0.5, 1.5, 90 + k);
      const beta = between(columns!, -1, 1, 100 + k);
      const shape = [1, 1, rows!, columns!];
      const [y, mean, variance] = runNativeKernel(
        FUSED_KERNELS.batchNorm,
        { x: { values: x, shape }, gamma: { values: gamma, shape: [columns!] }, beta: { values: beta, shape: [columns!] } },
        { epsilon: 1e-3 },
      );
      const reference = referenceBatchNorm(x, gamma, beta, 1e-3);
      const what = `[${rows}, ${columns}]`;
      expectClose(mean!, reference.mean, () => 1e-5, `mean of ${what}`);
      // The biased variance (what the moving variance moves towards), not TF's Bessel-corrected batch_variance.
      expectClose(variance!, reference.variance, (i) => 1e-5 * (1 + reference.variance[i]!), `variance of ${what}`);
      expectClose(y!, reference.y, () => 2e-5, `y of ${what}`);
      const [dx, dgamma, dbeta] = runNativeKernel(
        FUSED_KERNELS.batchNormGrad,
        {
          dy: { values: dy, shape },
          x: { values: x, shape },
          mean: { values: reference.mean, shape: [columns!] },
          variance: { values: reference.variance, shape: [columns!] },
          gamma: { values: gamma, shape: [columns!] },
        },
        { epsilon: 1e-3 },
      );
      const grads = referenceBatchNormGrad(dy, x, reference.mean, reference.variance, gamma, 1e-3);
      expectClose(dx!, grads.dx, () => 2e-5, `dx of ${what}`);
      expectClose(dgamma!, grads.dgamma, () => 1e-6 * rows! + 1e-6, `dgamma of ${what}`);
      expectClose(dbeta!, grads.dbeta, () => 1e-6 * rows! + 1e-6, `dbeta of ${what}`);
    }
  });
});
