import * as tf from '@tensorflow/tfjs';
import { DROPOUT_WEYL_STEP, dropoutKey, dropoutScale, dropoutThreshold, FUSED_KERNELS, layerNormInto } from '../fused.ts';
import { ERF_P, ERF_Q, INV_SQRT_2PI } from './gelu-approximation.ts';
import type { HeapBackend } from './heap.ts';
import { simdKernels, sumInBlocks } from './simd/module.ts';

/* ----------------------------------- fused kernels -------------------------------------- *
 * The kernels of fused.ts (which states the exact math) on the wasm heap: one pass where the   *
 * composite path runs a chain of element-wise kernels, each reading and writing the whole      *
 * tensor. The bulk runs in the SIMD functions of simd/fused-functions.ts (float32), the        *
 * JavaScript loops here (float64, rounded once on the store) do the remainder and the fallback. *
 * ---------------------------------------------------------------------------------------- */

const [P1, P3, P5, P7, P9, P11, P13] = ERF_P;
const [Q0, Q2, Q4, Q6, Q8] = ERF_Q;

/** 2^-k for k in [0, 127]: the exponent part of exp(t) for t in [-88, 0], looked up instead of built from bits. */
const NEGATIVE_POWERS_OF_TWO = Float64Array.from({ length: 128 }, (_, k) => 2 ** -k);

/**
 * TesseraGeluExact on the units from `start` on, in JavaScript: the tail the SIMD loop leaves (fewer than
 * four units), or everything where WebAssembly SIMD is missing. The same math as the SIMD kernel
 * (simd/fused-functions.ts), in float64: erf is Eigen's float rational approximation (TensorFlow's own erf for
 * float32; error ~1e-7, and +-1 in float32 beyond |u| = 4, hence the clamp); phi's exp(-x^2/2)
 * a range reduction to r in [-ln2/2, ln2/2], exp(r) by its degree-7 Taylor polynomial (relative
 * error < 6e-9) and 2^-n from a table. Below t = -87 phi is under float32's smallest normal and
 * x phi is taken as 0.
 */
function geluExactRange(input: Float32Array, y: Float32Array, slope: Float32Array, start: number): void {
  for (let i = start; i < input.length; i++) {
    const v = input[i]!;
    let u = v * Math.SQRT1_2;
    u = u > 4 ? 4 : u < -4 ? -4 : u;
    const u2 = u * u;
    const p = u * (P1 + u2 * (P3 + u2 * (P5 + u2 * (P7 + u2 * (P9 + u2 * (P11 + u2 * P13))))));
    const q = Q0 + u2 * (Q2 + u2 * (Q4 + u2 * (Q6 + u2 * Q8)));
    const cdf = 0.5 + (0.5 * p) / q;
    // exp(t), t = -v^2 / 2 <= 0: t = n ln2 + r with n = round(t / ln2) <= 0.
    const t = -0.5 * v * v;
    let density = 0;
    if (t > -87) {
      const n = Math.floor(t * Math.LOG2E + 0.5);
      const r = t - n * Math.LN2;
      const expR = 1 + r * (1 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040)))))));
      density = expR * NEGATIVE_POWERS_OF_TWO[-n]! * INV_SQRT_2PI;
    }
    y[i] = v * cdf;
    slope[i] = cdf + v * density;
  }
}

/**
 * TesseraGeluExact: y = x Phi(x) and dydx = Phi(x) + x phi(x) in one pass, four units at a time
 * in WebAssembly SIMD (float32, the composite path's precision: ~1.2e-7 max(1, |x|)), the
 * remainder in JavaScript.
 */
function geluExact({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const heap = backend as HeapBackend;
  const yInfo = heap.makeOutput(x.shape, 'float32');
  const slopeInfo = heap.makeOutput(x.shape, 'float32');
  const input = heap.typedArrayFromHeap(x);
  const y = heap.typedArrayFromHeap(yInfo);
  const slope = heap.typedArrayFromHeap(slopeInfo);
  const simd = simdKernels(heap);
  const vectorised = simd ? input.length - (input.length % 4) : 0;
  if (simd && vectorised > 0) simd.gelu(input.byteOffset, y.byteOffset, slope.byteOffset, input.byteOffset + 4 * vectorised);
  geluExactRange(input, y, slope, vectorised);
  return [yInfo, slopeInfo];
}

/** fused.ts's fmix32 without the final `>>> 0`: the same bits as an int32, which V8 keeps in a register. */
function fmix32Signed(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * TesseraDropout on units [start, size) in JavaScript (start even): the tail the SIMD loop leaves
 * (fewer than eight units), or everything where WebAssembly SIMD is missing. Each pair of units
 * hashes its counter (fused.ts's dropoutPairBits, the counter advanced by the Weyl step instead
 * of a multiply) and keeps or drops both from the two halves of the hash.
 */
function dropoutRange(input: Float32Array, out: Float32Array, start: number, rate: number, seed: number): void {
  const threshold = dropoutThreshold(rate);
  // The contract's float32 scale: the float64 product of two float32 values is exact, so the
  // store rounds it as a float32 product would.
  const keptScale = new Float64Array([dropoutScale(rate), 0]);
  const size = input.length;
  let counter = (dropoutKey(seed) + Math.imul(start >>> 1, DROPOUT_WEYL_STEP)) | 0;
  let i = start;
  for (; i + 1 < size; i += 2) {
    const h = fmix32Signed(counter);
    // (bits - threshold) >>> 31 is 1 exactly when bits < threshold (dropped): an index, not a
    // branch, which would mispredict at random. A dropped negative value becomes -0, as the contract says.
    out[i] = input[i]! * keptScale[((h & 0xffff) - threshold) >>> 31]!;
    out[i + 1] = input[i + 1]! * keptScale[((h >>> 16) - threshold) >>> 31]!;
    counter = (counter + DROPOUT_WEYL_STEP) | 0;
  }
  // An odd size: the last unit is decided by the low half of its pair's hash.
  if (i < size) out[i] = input[i]! * keptScale[((fmix32Signed(counter) & 0xffff) - threshold) >>> 31]!;
}

/** TesseraDropout without a mask tensor: eight units (four hashes) at a time in WebAssembly SIMD, the rest in JavaScript. */
function dropout({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const { rate, seed } = attrs as unknown as { rate: number; seed: number };
  const heap = backend as HeapBackend;
  const outInfo = heap.makeOutput(x.shape, 'float32');
  const input = heap.typedArrayFromHeap(x);
  const out = heap.typedArrayFromHeap(outInfo);
  const simd = simdKernels(heap);
  const vectorised = simd ? input.length - (input.length % 8) : 0;
  if (simd && vectorised > 0) {
    simd.dropout(input.byteOffset, out.byteOffset, input.byteOffset + 4 * vectorised, dropoutKey(seed), dropoutThreshold(rate), dropoutScale(rate));
  }
  dropoutRange(input, out, vectorised, rate, seed);
  return outInfo;
}

/** Rows and columns of a LayerNorm input: the columns are gamma's length, the rows the rest. */
function rowsOf(x: tf.TensorInfo, gamma: tf.TensorInfo): { rows: number; columns: number } {
  const columns = gamma.shape[0]!;
  return { rows: tf.util.sizeFromShape(x.shape) / columns, columns };
}

/** A LayerNorm input's layout: `rows` rows of `columns` values. */
interface Rows {
  rows: number;
  columns: number;
}

/** TesseraLayerNorm: in WebAssembly SIMD where the rows are a multiple of four values long (every model here), else in JavaScript. */
function layerNorm({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const gammaInfo = inputs.gamma as tf.TensorInfo;
  const epsilon = (attrs as unknown as { epsilon: number }).epsilon;
  const shape = rowsOf(x, gammaInfo);
  const heap = backend as HeapBackend;
  const yInfo = heap.makeOutput(x.shape, 'float32');
  const meanInfo = heap.makeOutput([shape.rows], 'float32');
  const rstdInfo = heap.makeOutput([shape.rows], 'float32');
  const [input, gamma, beta, y, means, rstds] = [x, gammaInfo, inputs.beta as tf.TensorInfo, yInfo, meanInfo, rstdInfo].map((info) => heap.typedArrayFromHeap(info)) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const simd = simdKernels(heap);
  if (simd && shape.columns % 4 === 0) {
    simd.layerNorm(input.byteOffset, y.byteOffset, means.byteOffset, rstds.byteOffset, gamma.byteOffset, beta.byteOffset, shape.rows, shape.columns, epsilon);
  } else {
    layerNormInto(input, gamma, beta, epsilon, { y, mean: means, rstd: rstds });
  }
  return [yInfo, meanInfo, rstdInfo];
}

/** The views TesseraLayerNormGrad reads and writes. */
interface LayerNormGradViews {
  dy: Float32Array;
  input: Float32Array;
  means: Float32Array;
  rstds: Float32Array;
  gamma: Float32Array;
  dx: Float32Array;
}

/**
 * TesseraLayerNormGrad in JavaScript (float64), where the SIMD kernel cannot run: one pass for a
 * row's two means and the dgamma, dbeta sums, one for dx.
 */
function layerNormGradRows({ dy, input, means, rstds, gamma, dx }: LayerNormGradViews, dgamma: Float64Array, dbeta: Float64Array, { rows, columns }: Rows): void {
  for (let row = 0; row < rows; row++) {
    const offset = row * columns;
    const mean = means[row]!;
    const rstd = rstds[row]!;
    let sumG = 0;
    let sumGXhat = 0;
    for (let c = 0; c < columns; c++) {
      const upstream = dy[offset + c]!;
      const xhat = (input[offset + c]! - mean) * rstd;
      const g = upstream * gamma[c]!;
      sumG += g;
      sumGXhat += g * xhat;
      dgamma[c]! += upstream * xhat;
      dbeta[c]! += upstream;
    }
    const meanG = sumG / columns;
    const meanGXhat = sumGXhat / columns;
    for (let c = 0; c < columns; c++) {
      const xhat = (input[offset + c]! - mean) * rstd;
      dx[offset + c] = rstd * (dy[offset + c]! * gamma[c]! - meanG - xhat * meanGXhat);
    }
  }
}

/** TesseraLayerNormGrad: in WebAssembly SIMD where the rows are a multiple of four values long, else in JavaScript; dgamma and dbeta summed in float64. */
function layerNormGrad({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const gammaInfo = inputs.gamma as tf.TensorInfo;
  const shape = rowsOf(x, gammaInfo);
  const { rows, columns } = shape;
  const heap = backend as HeapBackend;
  const dxInfo = heap.makeOutput(x.shape, 'float32');
  const dgammaInfo = heap.makeOutput(gammaInfo.shape, 'float32');
  const dbetaInfo = heap.makeOutput(gammaInfo.shape, 'float32');
  const view = (info: tf.TensorInfo) => heap.typedArrayFromHeap(info);
  const views: LayerNormGradViews = {
    dy: view(inputs.dy as tf.TensorInfo),
    input: view(x),
    means: view(inputs.mean as tf.TensorInfo),
    rstds: view(inputs.rstd as tf.TensorInfo),
    gamma: view(gammaInfo),
    dx: view(dxInfo),
  };
  const [dgammaOut, dbetaOut] = [view(dgammaInfo), view(dbetaInfo)];
  const dgamma = new Float64Array(columns);
  const dbeta = new Float64Array(columns);
  const simd = simdKernels(heap);
  if (simd && columns % 4 === 0) {
    const { dy, input, means, rstds, gamma, dx } = views;
    // The outputs serve as each block's float32 accumulators until the float64 totals are written.
    sumInBlocks(rows, [dgammaOut, dbetaOut], [dgamma, dbeta], (row, count) => {
      const skip = 4 * row * columns;
      simd.layerNormGrad(dy.byteOffset + skip, input.byteOffset + skip, means.byteOffset + 4 * row, rstds.byteOffset + 4 * row, gamma.byteOffset, dx.byteOffset + skip, dgammaOut.byteOffset, dbetaOut.byteOffset, count, columns);
    });
  } else {
    layerNormGradRows(views, dgamma, dbeta, shape);
  }
  dgammaOut.set(dgamma);
  dbetaOut.set(dbeta);
  return [dxInfo, dgammaInfo, dbetaInfo];
}

/**
 * The fused kernels registered for wasm: those measured faster than the composite path they
 * replace, forward and backward, at [128, 64, 256] and [128, 256, 64]. With SIMD all four
 * (GELU 65 -> 10 ms, dropout 16 -> 10, LayerNorm 22 -> 7); without it only GELU, whose
 * JavaScript loop still halves its composite path, while dropout's ties and LayerNorm's loses.
 */
export function fusedKernelsToRegister(simd: boolean): string[] {
  // Batch norm has no wasm kernel: its primitive falls back to the composite ops there.
  return simd ? Object.keys(WASM_FUSED_KERNELS) : [FUSED_KERNELS.geluExact];
}

/** The fused kernels this file implements for wasm, registered or not (see fusedKernelsToRegister). */
export const WASM_FUSED_KERNELS: Record<string, tf.KernelFunc> = {
  [FUSED_KERNELS.geluExact]: geluExact as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNorm]: layerNorm as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNormGrad]: layerNormGrad as unknown as tf.KernelFunc,
  [FUSED_KERNELS.dropout]: dropout as unknown as tf.KernelFunc,
};
