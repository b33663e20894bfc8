import * as tf from '@tensorflow/tfjs';

/* ------------------------------------------------------------------------------------------- *
 * Fused kernels: one kernel call where the primitives would otherwise run a chain of small     *
 * element-wise ones. This file is the contract: the kernel names and what each computes; each  *
 * kernel's folder holds its reference in plain JavaScript (float64), the `cpu` backend's kernel *
 * and the golden the faster ones (wasm, native) are tested against.                             *
 * A primitive asks `hasFusedKernel(name)` and falls back to its composite TF.js ops where the  *
 * active backend has none (tensorflow-gpu, webgl).                                             *
 * ------------------------------------------------------------------------------------------- */

/**
 * The fused kernels, by TF.js kernel name (the native ones are TensorFlow custom ops of the same
 * names):
 *
 * - `TesseraGeluExact`: inputs `{x}` float32; outputs `[y, dydx]`, y = x Phi(x) (Keras' exact
 *   gelu), dydx = Phi(x) + x phi(x), its derivative, so the backward pass is one Multiply.
 * - `TesseraLayerNorm`: inputs `{x [rows, C], gamma [C], beta [C]}`, attr `epsilon`; outputs
 *   `[y [rows, C], mean [rows], rstd [rows]]` with mean and the biased variance over C,
 *   rstd = 1 / sqrt(var + epsilon), y = (x - mean) rstd gamma + beta.
 * - `TesseraLayerNormGrad`: inputs `{dy, x, mean, rstd, gamma}` (shapes as above); outputs
 *   `[dx [rows, C], dgamma [C], dbeta [C]]`: with xhat = (x - mean) rstd and g = dy gamma,
 *   dx = rstd (g - mean_C(g) - xhat mean_C(g xhat)), dgamma = sum_rows(dy xhat), dbeta = sum_rows(dy).
 * - `TesseraDropout`: inputs `{x}`, attrs `rate` in [0, 1) and `seed` (int32); output
 *   y = x * (keep(i) ? s : 0) with s = float32(1 / (1 - rate)) and a float32 product (so every
 *   backend rounds alike, and a dropped negative x gives -0), keep(i) from `dropoutKeeps` below. Its gradient is the same
 *   kernel applied to dy with the same attrs: the mask is recomputed, never stored.
 * - `TesseraBatchNorm`: training-mode batch normalisation, inputs `{x [n, h, w, C], gamma [C],
 *   beta [C]}` (channels last; any [rows, C] as [1, 1, rows, C]), attr `epsilon`; outputs
 *   `[y (x's shape), mean [C], variance [C]]`, the mean and the biased variance over n, h, w,
 *   y = (x - mean) / sqrt(variance + epsilon) gamma + beta. Its gradient (gradients.ts) is
 *   `TesseraBatchNormGrad`: inputs `{dy, x, mean, variance, gamma}`, attr `epsilon`; outputs
 *   `[dx, dgamma, dbeta]`: with xhat = (x - mean) rstd, rstd = 1 / sqrt(variance + epsilon),
 *   dx = rstd gamma (dy - mean_rows(dy) - xhat mean_rows(dy xhat)), dgamma = sum_rows(dy xhat),
 *   dbeta = sum_rows(dy). The mean and variance outputs carry no gradient (the formula for dx
 *   already accounts for them; they only feed the moving statistics). On the native backend these
 *   are TensorFlow's own FusedBatchNormV3 and FusedBatchNormGradV3 (what Keras runs).
 * - `TesseraBiasAdd`: inputs `{x [..., C], bias [C]}` float32; output y = x + bias along the last
 *   axis. Its gradient (gradients.ts): dx = dy, dbias = `TesseraBiasAddGrad` of `{dy}`, the
 *   sum of dy over every axis but the last. On the native backend TensorFlow's BiasAdd and
 *   BiasAddGrad (what Keras' layers run), where a broadcast Add and its Sum took ~4x longer.
 */
export const FUSED_KERNELS = {
  geluExact: 'TesseraGeluExact',
  layerNorm: 'TesseraLayerNorm',
  layerNormGrad: 'TesseraLayerNormGrad',
  dropout: 'TesseraDropout',
  batchNorm: 'TesseraBatchNorm',
  batchNormGrad: 'TesseraBatchNormGrad',
  biasAdd: 'TesseraBiasAdd',
  biasAddGrad: 'TesseraBiasAddGrad',
} as const;

/** Whether the active backend has the fused kernel `name` (one of FUSED_KERNELS). */
export function hasFusedKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
