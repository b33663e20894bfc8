import * as tf from '@tensorflow/tfjs';
// The cpu backend these kernels are registered for, without its tfjs-node banner.
import './quiet-cpu.ts';

/* ------------------------------------------------------------------------------------------- *
 * Fused kernels: one kernel call where the primitives would otherwise run a chain of small     *
 * element-wise ones. This file is the contract: the kernel names, what each computes, and a    *
 * reference implementation in plain JavaScript (float64 arithmetic) that is both the `cpu`     *
 * backend's kernel and the golden the faster ones (wasm, native) are tested against.           *
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
 *   y = (x - mean) / sqrt(variance + epsilon) gamma + beta. Its gradient (registered below) is
 *   `TesseraBatchNormGrad`: inputs `{dy, x, mean, variance, gamma}`, attr `epsilon`; outputs
 *   `[dx, dgamma, dbeta]`: with xhat = (x - mean) rstd, rstd = 1 / sqrt(variance + epsilon),
 *   dx = rstd gamma (dy - mean_rows(dy) - xhat mean_rows(dy xhat)), dgamma = sum_rows(dy xhat),
 *   dbeta = sum_rows(dy). The mean and variance outputs carry no gradient (the formula for dx
 *   already accounts for them; they only feed the moving statistics). On the native backend these
 *   are TensorFlow's own FusedBatchNormV3 and FusedBatchNormGradV3 (what Keras runs).
 * - `TesseraBiasAdd`: inputs `{x [..., C], bias [C]}` float32; output y = x + bias along the last
 *   axis. Its gradient (registered below): dx = dy, dbias = `TesseraBiasAddGrad` of `{dy}`, the
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

/** murmur3's 32-bit finaliser: a bijection on uint32 in which every input bit flips ~half the output bits. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The drop threshold: a unit drops when its 16 random bits are below ceil(rate * 65536). */
export function dropoutThreshold(rate: number): number {
  return Math.ceil(rate * 65536);
}

/** The factor kept units are scaled by: float32(1 / (1 - rate)), from the float64 rate. */
export function dropoutScale(rate: number): number {
  return Math.fround(1 / (1 - rate));
}

/** The per-mask key mixed into every unit's hash (fmix32 of the seed). */
export function dropoutKey(seed: number): number {
  return fmix32(seed >>> 0);
}

/** The Weyl sequence's step between consecutive pairs of units (2^32 / the golden ratio, odd). */
export const DROPOUT_WEYL_STEP = 0x9e3779b1;

/**
 * The 32 random bits of units 2p and 2p+1 of a mask: fmix32(key + p * DROPOUT_WEYL_STEP mod 2^32),
 * a counter-based stream (a Weyl sequence through a good mixer), so any unit's decision is
 * computed on its own, in any order, on any thread, identically on every backend. Unit 2p uses
 * the low 16 bits, unit 2p+1 the high 16.
 */
export function dropoutPairBits(key: number, pair: number): number {
  return fmix32((key + Math.imul(pair, DROPOUT_WEYL_STEP)) >>> 0);
}

/** 1 where unit i of a `size`-unit mask is kept, 0 where dropped (the reference for every backend). */
export function dropoutKeeps(size: number, rate: number, seed: number): Uint8Array {
  const keeps = new Uint8Array(size);
  const threshold = dropoutThreshold(rate);
  const key = dropoutKey(seed);
  for (let i = 0; i < size; i += 2) {
    const bits = dropoutPairBits(key, i >>> 1);
    keeps[i] = (bits & 0xffff) >= threshold ? 1 : 0;
    if (i + 1 < size) keeps[i + 1] = bits >>> 16 >= threshold ? 1 : 0;
  }
  return keeps;
}

/* ----------------------------- reference implementations --------------------------------- */

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erf to ~1e-15: a Maclaurin series below 2.5, a continued fraction for erfc above (float64 throughout). */
export function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    // Maclaurin series: erf(a) = 2/sqrt(pi) sum (-1)^n a^(2n+1) / (n! (2n+1)); converges fast below 2.5.
    let term = a;
    let sum = a;
    const a2 = a * a;
    for (let n = 1; n < 80; n++) {
      term *= -a2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc by Lentz's continued fraction: erfc(a) = exp(-a^2)/sqrt(pi) / (a + 1/2/(a + 1/(a + 3/2/(a + ...)))).
    let f = a;
    let c = a;
    let d = 0;
    for (let n = 1; n < 200; n++) {
      const an = n / 2;
      d = a + an * d;
      d = d === 0 ? 1e-300 : 1 / d;
      c = a + an / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

/** TesseraGeluExact on plain arrays. */
export function referenceGeluExact(x: ArrayLike<number>): { y: Float32Array; dydx: Float32Array } {
  const y = new Float32Array(x.length);
  const dydx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    const cdf = 0.5 * (1 + erf(v * INV_SQRT2));
    y[i] = v * cdf;
    dydx[i] = cdf + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v);
  }
  return { y, dydx };
}

/**
 * TesseraLayerNorm into given arrays (x row-major [rows, C], C = gamma.length): the mean, the
 * variance about it (a second pass over the row, in cache), then y. Float64 arithmetic. Also the
 * wasm backend's path where its SIMD kernel cannot run.
 */
export function layerNormInto(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  epsilon: number,
  out: { y: Float32Array; mean: Float32Array; rstd: Float32Array },
): void {
  const columns = gamma.length;
  const rows = x.length / columns;
  for (let r = 0; r < rows; r++) {
    const o = r * columns;
    let sum = 0;
    for (let c = 0; c < columns; c++) sum += x[o + c]!;
    const m = sum / columns;
    let squares = 0;
    for (let c = 0; c < columns; c++) squares += (x[o + c]! - m) ** 2;
    const s = 1 / Math.sqrt(squares / columns + epsilon);
    for (let c = 0; c < columns; c++) out.y[o + c] = (x[o + c]! - m) * s * gamma[c]! + beta[c]!;
    out.mean[r] = m;
    out.rstd[r] = s;
  }
}

/** TesseraLayerNorm on plain arrays (x row-major [rows, C]). */
export function referenceLayerNorm(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  epsilon: number,
): { y: Float32Array; mean: Float32Array; rstd: Float32Array } {
  const rows = x.length / gamma.length;
  const out = { y: new Float32Array(x.length), mean: new Float32Array(rows), rstd: new Float32Array(rows) };
  layerNormInto(x, gamma, beta, epsilon, out);
  return out;
}

/** TesseraLayerNormGrad on plain arrays. */
export function referenceLayerNormGrad(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  gamma: ArrayLike<number>,
): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
  const columns = gamma.length;
  const rows = x.length / columns;
  const dx = new Float32Array(x.length);
  const dgamma = new Float64Array(columns);
  const dbeta = new Float64Array(columns);
  for (let r = 0; r < rows; r++) {
    const o = r * columns;
    let meanG = 0;
    let meanGXhat = 0;
    for (let c = 0; c < columns; c++) {
      const xhat = (x[o + c]! - mean[r]!) * rstd[r]!;
      const g = dy[o + c]! * gamma[c]!;
      meanG += g;
      meanGXhat += g * xhat;
      dgamma[c]! += dy[o + c]! * xhat;
      dbeta[c]! += dy[o + c]!;
    }
    meanG /= columns;
    meanGXhat /= columns;
    for (let c = 0; c < columns; c++) {
      const xhat = (x[o + c]! - mean[r]!) * rstd[r]!;
      dx[o + c] = rstd[r]! * (dy[o + c]! * gamma[c]! - meanG - xhat * meanGXhat);
    }
  }
  return { dx, dgamma: Float32Array.from(dgamma), dbeta: Float32Array.from(dbeta) };
}

/** TesseraDropout on plain arrays. */
export function referenceDropout(x: ArrayLike<number>, rate: number, seed: number): Float32Array {
  const keeps = dropoutKeeps(x.length, rate, seed);
  const scale = dropoutScale(rate);
  const y = new Float32Array(x.length);
  // A product even for dropped units: -x * 0 is -0, as in the composite x * mask.
  for (let i = 0; i < x.length; i++) y[i] = x[i]! * (keeps[i] ? scale : 0);
  return y;
}

/**
 * TesseraBatchNorm on plain arrays (x row-major [rows, C], C = gamma.length): per column the
 * mean, the biased variance about it, then y. Float64 arithmetic.
 */
export function referenceBatchNorm(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  epsilon: number,
): { y: Float32Array; mean: Float32Array; variance: Float32Array } {
  const columns = gamma.length;
  const rows = x.length / columns;
  const mean = new Float64Array(columns);
  const variance = new Float64Array(columns);
  for (let i = 0; i < x.length; i++) mean[i % columns]! += x[i]!;
  for (let c = 0; c < columns; c++) mean[c]! /= rows;
  for (let i = 0; i < x.length; i++) variance[i % columns]! += (x[i]! - mean[i % columns]!) ** 2;
  for (let c = 0; c < columns; c++) variance[c]! /= rows;
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % columns;
    y[i] = ((x[i]! - mean[c]!) / Math.sqrt(variance[c]! + epsilon)) * gamma[c]! + beta[c]!;
  }
  return { y, mean: Float32Array.from(mean), variance: Float32Array.from(variance) };
}

/** TesseraBatchNormGrad on plain arrays (x and dy row-major [rows, C]). */
export function referenceBatchNormGrad(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  gamma: ArrayLike<number>,
  epsilon: number,
): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
  const columns = gamma.length;
  const rows = x.length / columns;
  const rstd = Array.from(variance, (v) => 1 / Math.sqrt(v + epsilon));
  const xhat = (i: number) => (x[i]! - mean[i % columns]!) * rstd[i % columns]!;
  const dgamma = new Float64Array(columns);
  const dbeta = new Float64Array(columns);
  for (let i = 0; i < x.length; i++) {
    dgamma[i % columns]! += dy[i]! * xhat(i);
    dbeta[i % columns]! += dy[i]!;
  }
  const dx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % columns;
    dx[i] = rstd[c]! * gamma[c]! * (dy[i]! - dbeta[c]! / rows - xhat(i) * (dgamma[c]! / rows));
  }
  return { dx, dgamma: Float32Array.from(dgamma), dbeta: Float32Array.from(dbeta) };
}

/** TesseraBiasAdd on plain arrays (x row-major [rows, C], C = bias.length). */
export function referenceBiasAdd(x: ArrayLike<number>, bias: ArrayLike<number>): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! + bias[i % bias.length]!;
  return y;
}

/** TesseraBiasAddGrad on plain arrays: the column sums of dy [rows, C] (float64). */
export function referenceBiasAddGrad(dy: ArrayLike<number>, columns: number): Float32Array {
  const sums = new Float64Array(columns);
  for (let i = 0; i < dy.length; i++) sums[i % columns]! += dy[i]!;
  return Float32Array.from(sums);
}

/* ----------------------------- the cpu backend's kernels --------------------------------- */

/** The part of the cpu backend the kernels use. */
interface CpuBackend {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function values(backend: CpuBackend, info: tf.TensorInfo): Float32Array {
  return backend.data.get(info.dataId).values as Float32Array;
}

/**
 * Registers the reference implementations as the `cpu` backend's fused kernels. Called when this
 * module loads (registering for a backend that is not initialised yet is allowed), so code that
 * sets the cpu backend directly, as tests do, gets them too.
 */
function registerCpuFusedKernels(): void {
  const register = (kernelName: string, kernelFunc: (inputs: tf.NamedTensorInfoMap, backend: CpuBackend, attrs: tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[]) =>
    tf.registerKernel({
      kernelName,
      backendName: 'cpu',
      kernelFunc: ({ inputs, backend, attrs }) => kernelFunc(inputs, backend as CpuBackend, attrs as tf.NamedAttrMap),
    });
  register(FUSED_KERNELS.geluExact, (inputs, backend) => {
    const x = inputs.x as tf.TensorInfo;
    const { y, dydx } = referenceGeluExact(values(backend, x));
    return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo(x.shape, 'float32', dydx)];
  });
  register(FUSED_KERNELS.layerNorm, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    const { y, mean, rstd } = referenceLayerNorm(
      values(backend, x),
      values(backend, inputs.gamma as tf.TensorInfo),
      values(backend, inputs.beta as tf.TensorInfo),
      attrs.epsilon as number,
    );
    const rows = [x.shape[0]!];
    return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo(rows, 'float32', mean), backend.makeTensorInfo(rows, 'float32', rstd)];
  });
  register(FUSED_KERNELS.layerNormGrad, (inputs, backend) => {
    const x = inputs.x as tf.TensorInfo;
    const gamma = inputs.gamma as tf.TensorInfo;
    const { dx, dgamma, dbeta } = referenceLayerNormGrad(
      values(backend, inputs.dy as tf.TensorInfo),
      values(backend, x),
      values(backend, inputs.mean as tf.TensorInfo),
      values(backend, inputs.rstd as tf.TensorInfo),
      values(backend, gamma),
    );
    return [backend.makeTensorInfo(x.shape, 'float32', dx), backend.makeTensorInfo(gamma.shape, 'float32', dgamma), backend.makeTensorInfo(gamma.shape, 'float32', dbeta)];
  });
  register(FUSED_KERNELS.dropout, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    return backend.makeTensorInfo(x.shape, 'float32', referenceDropout(values(backend, x), attrs.rate as number, attrs.seed as number));
  });
  register(FUSED_KERNELS.batchNorm, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    const gamma = inputs.gamma as tf.TensorInfo;
    const { y, mean, variance } = referenceBatchNorm(values(backend, x), values(backend, gamma), values(backend, inputs.beta as tf.TensorInfo), attrs.epsilon as number);
    return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo(gamma.shape, 'float32', mean), backend.makeTensorInfo(gamma.shape, 'float32', variance)];
  });
  register(FUSED_KERNELS.batchNormGrad, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    const gamma = inputs.gamma as tf.TensorInfo;
    const { dx, dgamma, dbeta } = referenceBatchNormGrad(
      values(backend, inputs.dy as tf.TensorInfo),
      values(backend, x),
      values(backend, inputs.mean as tf.TensorInfo),
      values(backend, inputs.variance as tf.TensorInfo),
      values(backend, gamma),
      attrs.epsilon as number,
    );
    return [backend.makeTensorInfo(x.shape, 'float32', dx), backend.makeTensorInfo(gamma.shape, 'float32', dgamma), backend.makeTensorInfo(gamma.shape, 'float32', dbeta)];
  });
  register(FUSED_KERNELS.biasAdd, (inputs, backend) => {
    const x = inputs.x as tf.TensorInfo;
    return backend.makeTensorInfo(x.shape, 'float32', referenceBiasAdd(values(backend, x), values(backend, inputs.bias as tf.TensorInfo)));
  });
  register(FUSED_KERNELS.biasAddGrad, (inputs, backend) => {
    const dy = inputs.dy as tf.TensorInfo;
    const columns = dy.shape[dy.shape.length - 1]!;
    return backend.makeTensorInfo([columns], 'float32', referenceBiasAddGrad(values(backend, dy), columns));
  });
}

/**
 * TesseraBatchNorm's gradient, for every backend that has the kernel pair: one
 * TesseraBatchNormGrad call serves x, gamma and beta. A registered gradient rather than a
 * tf.customGrad, so the kernel's mean and variance outputs reach the caller (for the moving
 * statistics) while autodiff still wires y back to the inputs.
 */
function registerBatchNormGradient(): void {
  tf.registerGradient({
    kernelName: FUSED_KERNELS.batchNorm,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const upstream = Array.isArray(dy) ? dy[0]! : dy;
      // Computed here, not in the thunks: the engine runs each thunk in its own tidy, which
      // would dispose the other two outputs of a call made in the first.
      const [dx, dgamma, dbeta] = tf.engine().runKernel(FUSED_KERNELS.batchNormGrad, { dy: upstream, x, mean, variance, gamma }, { epsilon: attrs.epsilon as number }) as tf.Tensor[];
      return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta! };
    },
  });
}

registerBatchNormGradient();

/** TesseraBiasAdd's gradient: dy itself for x, one TesseraBiasAddGrad for the bias. */
tf.registerGradient({
  kernelName: FUSED_KERNELS.biasAdd,
  gradFunc: (dy) => {
    const upstream = Array.isArray(dy) ? dy[0]! : dy;
    return { x: () => upstream, bias: () => tf.engine().runKernel(FUSED_KERNELS.biasAddGrad, { dy: upstream }) as tf.Tensor };
  },
});

registerCpuFusedKernels();
