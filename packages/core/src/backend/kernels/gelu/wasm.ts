import * as tf from '@tensorflow/tfjs';
import type { HeapBackend } from '../../wasm/heap.ts';
import { simdKernels } from '../../wasm/simd/module.ts';
import { ERF_P, ERF_Q, INV_SQRT_2PI } from './approximation.ts';

/* TesseraGeluExact on the wasm heap: the SIMD function of simd.ts for the bulk, this JavaScript loop (float64, rounded once on the store) for the remainder and where SIMD is missing. */

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
export function geluExact({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
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
