import * as tf from '@tensorflow/tfjs';
import { dropoutKey, dropoutThreshold, FUSED_KERNELS } from './fused.ts';

/* ------------------------------------------------------------------------------------------ *
 * Kernel replacements for the wasm backend where TF.js 4.22's own kernel does needless work.  *
 * ------------------------------------------------------------------------------------------ */

/** The part of the wasm backend object the replacements use (all exist on BackendWasm). */
interface RefCountingBackend {
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

/**
 * Identity without a copy. The engine runs Identity on every tensor it saves for the backward
 * pass (Engine.clone), and on wasm that kernel copies the whole buffer: a training step of the
 * reference models makes ~200-300 such copies (5-6% of the step) and holds each saved tensor
 * twice. The backend already reference-counts its buffers (its Reshape shares data the same way)
 * and no wasm kernel writes into an input, so sharing the buffer is safe.
 */
function identitySharingData({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  (backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Sum over leading axes ([8192, 256] -> [256]) as one sequential pass. The wasm Sum kernel
 * reduces innermost axes only, so for leading ones it first transposes the whole input, and its
 * transpose is slow: ~20 ms for that shape, against ~1.5-3 ms for this loop over the same memory.
 * Every bias gradient and LayerNorm's gamma/beta gradients are such sums (13% of a token-mixing model's step
 * on wasm). Accumulates in float64, then rounds once. Anything else goes to the original kernel.
 */
function sumOverLeadingAxes(originalSum: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32') return originalSum(args);
    const backend = args.backend as RefCountingBackend;
    const kept = x.shape.slice(axes.length);
    const rows = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const columns = kept.reduce((a, b) => a * b, 1);
    const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
    // Views on the wasm heap: taken after the allocation above, which may grow (and so detach) it.
    const input = backend.typedArrayFromHeap(x);
    const totals = new Float64Array(columns);
    // Four rows per pass over `totals`: half the time of one row per pass (fewer loads and
    // stores of the accumulators); the four are added in float64, so nothing is lost.
    let row = 0;
    for (; row + 4 <= rows; row += 4) {
      const o0 = row * columns;
      const o1 = o0 + columns;
      const o2 = o1 + columns;
      const o3 = o2 + columns;
      for (let column = 0; column < columns; column++) {
        totals[column]! += input[o0 + column]! + input[o1 + column]! + (input[o2 + column]! + input[o3 + column]!);
      }
    }
    for (; row < rows; row++) {
      const offset = row * columns;
      for (let column = 0; column < columns; column++) totals[column]! += input[offset + column]!;
    }
    backend.typedArrayFromHeap(out).set(totals);
    return out;
  };
}

/* ----------------------------------- fused kernels -------------------------------------- *
 * The kernels of fused.ts (which states the exact math) as JavaScript loops over views of the  *
 * wasm heap: one pass where the composite path runs a chain of element-wise kernels, each     *
 * reading and writing the whole tensor. Arithmetic is float64, rounded once on the store.     *
 * ---------------------------------------------------------------------------------------- */

/** The backend's heap allocator and views; every output is allocated before any view is taken. */
type HeapBackend = RefCountingBackend;

/** The coefficients of Eigen's float erf (generic_fast_erf_float): odd over even polynomial on [-4, 4]. */
const ERF_P = [-1.60960333262415e-2, -2.95459980854025e-3, -7.34990630326855e-4, -5.69250639462346e-5, -2.10102402082508e-6, 2.77068142495902e-8, -2.72614225801306e-10] as const;
const ERF_Q = [-1.42647390514189e-2, -7.37332916720468e-3, -1.68282697438203e-3, -2.13374055278905e-4, -1.45660718464996e-5] as const;
const [P1, P3, P5, P7, P9, P11, P13] = ERF_P;
const [Q0, Q2, Q4, Q6, Q8] = ERF_Q;

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
/** 2^-k for k in [0, 127]: the exponent part of exp(t) for t in [-88, 0], looked up instead of built from bits. */
const NEGATIVE_POWERS_OF_TWO = Float64Array.from({ length: 128 }, (_, k) => 2 ** -k);

/**
 * TesseraGeluExact: y = x Phi(x), dydx = Phi(x) + x phi(x) in one pass. erf is Eigen's float
 * rational approximation (TensorFlow's own erf for float32; error ~1e-7, and it is +-1 in float32
 * beyond |u| = 4, hence the clamp), so no exp is spent on erf. phi's exp(-x^2/2) is a range
 * reduction to r in [-ln2/2, ln2/2], exp(r) by its degree-7 Taylor polynomial (relative error
 * < 6e-9) and 2^-n from a table: about twice as fast as Math.exp, which V8 calls out of line.
 * Below t = -87 phi is under float32's smallest normal and x phi is taken as 0.
 */
function geluExact({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const heap = backend as HeapBackend;
  const yInfo = heap.makeOutput(x.shape, 'float32');
  const slopeInfo = heap.makeOutput(x.shape, 'float32');
  const input = heap.typedArrayFromHeap(x);
  const y = heap.typedArrayFromHeap(yInfo);
  const slope = heap.typedArrayFromHeap(slopeInfo);
  for (let i = 0; i < input.length; i++) {
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
 * TesseraDropout without a mask tensor: each pair of units hashes its counter (fused.ts's
 * dropoutPairBits, fmix32 written inline, the counter advanced by the Weyl step instead of a
 * multiply) and keeps or drops both from the two halves of the hash.
 */
function dropout({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const { rate, seed } = attrs as unknown as { rate: number; seed: number };
  const heap = backend as HeapBackend;
  const outInfo = heap.makeOutput(x.shape, 'float32');
  const input = heap.typedArrayFromHeap(x);
  const out = heap.typedArrayFromHeap(outInfo);
  const threshold = dropoutThreshold(rate);
  // The contract's float32 scale: the float64 product of two float32 values is exact, so the
  // store rounds it as a float32 product would.
  const keptScale = new Float64Array([Math.fround(1 / (1 - rate)), 0]);
  const size = input.length;
  let counter = dropoutKey(seed) | 0;
  let i = 0;
  for (; i + 1 < size; i += 2) {
    const h = fmix32Signed(counter);
    // (bits - threshold) >>> 31 is 1 exactly when bits < threshold (dropped): an index, not a
    // branch, which would mispredict at random. A dropped negative value becomes -0, as the contract says.
    out[i] = input[i]! * keptScale[((h & 0xffff) - threshold) >>> 31]!;
    out[i + 1] = input[i + 1]! * keptScale[((h >>> 16) - threshold) >>> 31]!;
    counter = (counter + 0x9e3779b1) | 0;
  }
  // An odd size: the last unit is decided by the low half of its pair's hash.
  if (i < size) out[i] = input[i]! * keptScale[((fmix32Signed(counter) & 0xffff) - threshold) >>> 31]!;
  return outInfo;
}

/** Rows and columns of a LayerNorm input: the columns are gamma's length, the rows the rest. */
function rowsOf(x: tf.TensorInfo, gamma: tf.TensorInfo): { rows: number; columns: number } {
  const columns = gamma.shape[0]!;
  return { rows: tf.util.sizeFromShape(x.shape) / columns, columns };
}

/** TesseraLayerNorm, row by row: the mean, the variance about it (two passes over a row in cache), then y. */
function layerNorm({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const gammaInfo = inputs.gamma as tf.TensorInfo;
  const epsilon = (attrs as unknown as { epsilon: number }).epsilon;
  const { rows, columns } = rowsOf(x, gammaInfo);
  const heap = backend as HeapBackend;
  const yInfo = heap.makeOutput(x.shape, 'float32');
  const meanInfo = heap.makeOutput([rows], 'float32');
  const rstdInfo = heap.makeOutput([rows], 'float32');
  const input = heap.typedArrayFromHeap(x);
  const gamma = heap.typedArrayFromHeap(gammaInfo);
  const beta = heap.typedArrayFromHeap(inputs.beta as tf.TensorInfo);
  const y = heap.typedArrayFromHeap(yInfo);
  const means = heap.typedArrayFromHeap(meanInfo);
  const rstds = heap.typedArrayFromHeap(rstdInfo);
  for (let row = 0; row < rows; row++) {
    const offset = row * columns;
    let sum = 0;
    for (let c = 0; c < columns; c++) sum += input[offset + c]!;
    const mean = sum / columns;
    let squares = 0;
    for (let c = 0; c < columns; c++) {
      const centred = input[offset + c]! - mean;
      squares += centred * centred;
    }
    const rstd = 1 / Math.sqrt(squares / columns + epsilon);
    for (let c = 0; c < columns; c++) y[offset + c] = (input[offset + c]! - mean) * rstd * gamma[c]! + beta[c]!;
    means[row] = mean;
    rstds[row] = rstd;
  }
  return [yInfo, meanInfo, rstdInfo];
}

/**
 * TesseraLayerNormGrad, row by row: one pass for the row's two means and the dgamma, dbeta
 * accumulators (float64), one for dx.
 */
function layerNormGrad({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const gammaInfo = inputs.gamma as tf.TensorInfo;
  const { rows, columns } = rowsOf(x, gammaInfo);
  const heap = backend as HeapBackend;
  const dxInfo = heap.makeOutput(x.shape, 'float32');
  const dgammaInfo = heap.makeOutput(gammaInfo.shape, 'float32');
  const dbetaInfo = heap.makeOutput(gammaInfo.shape, 'float32');
  const dy = heap.typedArrayFromHeap(inputs.dy as tf.TensorInfo);
  const input = heap.typedArrayFromHeap(x);
  const means = heap.typedArrayFromHeap(inputs.mean as tf.TensorInfo);
  const rstds = heap.typedArrayFromHeap(inputs.rstd as tf.TensorInfo);
  const gamma = heap.typedArrayFromHeap(gammaInfo);
  const dx = heap.typedArrayFromHeap(dxInfo);
  const dgamma = new Float64Array(columns);
  const dbeta = new Float64Array(columns);
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
  heap.typedArrayFromHeap(dgammaInfo).set(dgamma);
  heap.typedArrayFromHeap(dbetaInfo).set(dbeta);
  return [dxInfo, dgammaInfo, dbetaInfo];
}

/**
 * The fused kernels registered for wasm: those measured faster than the composite path they
 * replace, forward and backward, at [128, 64, 256] and [128, 256, 64] (see WASM_FUSED_KERNELS).
 */
export const REGISTERED_FUSED_KERNELS: readonly string[] = [FUSED_KERNELS.geluExact];

/** The fused kernels this file implements for wasm, registered or not (see REGISTERED_FUSED_KERNELS). */
export const WASM_FUSED_KERNELS: Record<string, tf.KernelFunc> = {
  [FUSED_KERNELS.geluExact]: geluExact as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNorm]: layerNorm as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNormGrad]: layerNormGrad as unknown as tf.KernelFunc,
  [FUSED_KERNELS.dropout]: dropout as unknown as tf.KernelFunc,
};

let installed = false;

/**
 * Replaces two wasm kernels, once per process: Identity by one that shares its buffer, Sum over
 * leading axes by a single pass. Both give the same values (the sum more precisely).
 */
export function useFasterWasmKernels(): void {
  if (installed) return;
  const sum = tf.getKernel('Sum', 'wasm');
  if (sum) {
    tf.unregisterKernel('Sum', 'wasm');
    tf.registerKernel({ kernelName: 'Sum', backendName: 'wasm', kernelFunc: sumOverLeadingAxes(sum.kernelFunc) });
  }
  const original = tf.getKernel('Identity', 'wasm');
  // Strings live outside the wasm heap; keep the original kernel for them.
  const fallback = original?.kernelFunc;
  if (original) tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string' && fallback) return fallback(args) as tf.TensorInfo;
      return identitySharingData(args);
    },
  });
  for (const kernelName of REGISTERED_FUSED_KERNELS) {
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: WASM_FUSED_KERNELS[kernelName]! });
  }
  installed = true;
}
