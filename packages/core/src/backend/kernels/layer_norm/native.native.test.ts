import { describe, expect, it } from 'vitest';
import { FUSED_KERNELS, referenceLayerNorm, referenceLayerNormGrad } from '../index.ts';
import { useNativeBackend, between, expectClose, runNativeKernel } from '../testing.ts';

const requireNative = useNativeBackend();

describe('TesseraLayerNorm and TesseraLayerNormGrad as TensorFlow custom ops (vs the reference)', () => {
  it('TesseraLayerNorm matches the reference: y, per-row mean and rstd', (context) => {
    requireNative(context);
    const cases = [
      { rows: 1, columns: 1, offset: 0, epsilon: 1e-6 },
      { rows: 3, columns: 7, offset: 0, epsilon: 1e-3 },
      { rows: 37, columns: 256, offset: 0, epsilon: 1e-6 },
      { rows: 1031, columns: 64, offset: 0, epsilon: 1e-6 },
      // A mean far from 0 next to a std of ~0.6: a one-pass E[x^2] - m^2 would lose most digits.
      { rows: 17, columns: 33, offset: 300, epsilon: 1e-6 },
    ];
    for (const [k, { rows, columns, offset, epsilon }] of cases.entries()) {
      const x = between(rows * columns, offset - 1, offset + 1, 10 + k);
      const gamma = between(columns, 0.5, 1.5, 20 + k);
      const beta = between(columns, -1, 1, 30 + k);
      const [y, mean, rstd] = runNativeKernel(
        FUSED_KERNELS.layerNorm,
        { x: { values: x, shape: [rows, columns] }, gamma: { values: gamma, shape: [columns] }, beta: { values: beta, shape: [columns] } },
        { epsilon },
      );
      const reference = referenceLayerNorm(x, gamma, beta, epsilon);
      const what = `[${rows}, ${columns}] + ${offset}`;
      // The mean is rounded to float32 (half an ulp of |offset|), and (x - mean) inherits that.
      const meanUlp = offset === 0 ? 0 : 2 ** (Math.floor(Math.log2(offset)) - 23);
      expectClose(mean!, reference.mean, () => 1e-6 + meanUlp, `mean of ${what}`);
      expectClose(rstd!, reference.rstd, (i) => 2e-6 * reference.rstd[i]!, `rstd of ${what}`);
      expectClose(y!, reference.y, (i) => 4e-6 + meanUlp * reference.rstd[Math.floor(i / columns)]! * 1.5, `y of ${what}`);
    }
  });

  it('TesseraLayerNormGrad matches the reference: dx, and dgamma and dbeta summed over rows', (context) => {
    requireNative(context);
    for (const [k, [rows, columns]] of [[1, 5], [3, 7], [129, 256], [2053, 64]].entries()) {
      const x = between(rows! * columns!, -2, 2, 40 + k);
      const dy = between(rows! * columns!, -1, 1, 50 + k);
      const gamma = between(columns!, 0.5, 1.5, 60 + k);
      const { mean, rstd } = referenceLayerNorm(x, gamma, new Float32Array(columns!), 1e-6);
      const [dx, dgamma, dbeta] = runNativeKernel(FUSED_KERNELS.layerNormGrad, {
        dy: { values: dy, shape: [rows!, columns!] },
        x: { values: x, shape: [rows!, columns!] },
        mean: { values: mean, shape: [rows!] },
        rstd: { values: rstd, shape: [rows!] },
        gamma: { values: gamma, shape: [columns!] },
      });
      const reference = referenceLayerNormGrad(dy, x, mean, rstd, gamma);
      const what = `[${rows}, ${columns}]`;
      expectClose(dx!, reference.dx, () => 1e-5, `dx of ${what}`);
      // Sums over rows: float32 rounding grows with the number of terms (|dy xhat| <= ~2 each).
      expectClose(dgamma!, reference.dgamma, () => 1e-6 * rows! + 1e-6, `dgamma of ${what}`);
      expectClose(dbeta!, reference.dbeta, () => 1e-6 * rows! + 1e-6, `dbeta of ${what}`);
    }
  });
});
