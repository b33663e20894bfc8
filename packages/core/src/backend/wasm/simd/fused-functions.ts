import { DROPOUT_WEYL_STEP } from '../../fused.ts';
import { ERF_P, ERF_Q, INV_SQRT_2PI } from '../gelu-approximation.ts';
import { advance, at, F32, horizontalSum, horner, I32, loopUntil, V128, type WasmFunction, wasm, ZERO } from './assembler.ts';

/* ------------------------------------------------------------------------------------------ *
 * The SIMD functions behind fused.ts's kernels: ../fused-kernels.ts calls them on the wasm    *
 * heap, and each is the float32 twin of a JavaScript loop there, four lanes per instruction.  *
 * ------------------------------------------------------------------------------------------ */

/** Cephes' expf: exp(r) = 1 + r + r^2 p(r) on [-ln2/2, ln2/2], ln2 split in two for the reduction. */
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1] as const;
const LN2_HIGH = 0.693359375;
const LN2_LOW = -2.12194440e-4;

/**
 * gelu(x, y, slope, end): the float32 twin of geluExactRange (../fused-kernels.ts), four units
 * per iteration, from byte address x to end (a multiple of 16 bytes further). 2^n is built in the exponent bits, n >= -126
 * after the clamp of t at -87, so it is always a normal float.
 */
export function geluFunction(): WasmFunction {
  const [x, y, slope, end, v, u, u2, cdf, t, n, r] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  return {
    name: 'gelu',
    params: [I32, I32, I32, I32],
    locals: [V128, V128, V128, V128, V128, V128, V128],
    code: loopUntil(x, end, 16, [
      wasm.get(x), wasm.v128Load(0), wasm.set(v),
      wasm.get(v), wasm.f32x4Const(Math.SQRT1_2), wasm.f32x4Mul, wasm.f32x4Const(4), wasm.f32x4Pmin, wasm.f32x4Const(-4), wasm.f32x4Pmax, wasm.set(u),
      wasm.get(u), wasm.get(u), wasm.f32x4Mul, wasm.set(u2),
      // cdf = 0.5 + 0.5 p(u) / q(u)
      wasm.f32x4Const(0.5),
      ...horner(u2, [...ERF_P].reverse()), wasm.get(u), wasm.f32x4Mul, wasm.f32x4Const(0.5), wasm.f32x4Mul,
      ...horner(u2, [...ERF_Q].reverse()), wasm.f32x4Div,
      wasm.f32x4Add, wasm.set(cdf),
      wasm.get(y), wasm.get(v), wasm.get(cdf), wasm.f32x4Mul, wasm.v128Store(0),
      // t = max(-v^2 / 2, -87) = n ln2 + r
      wasm.get(v), wasm.get(v), wasm.f32x4Mul, wasm.f32x4Const(-0.5), wasm.f32x4Mul, wasm.f32x4Const(-87), wasm.f32x4Pmax, wasm.set(t),
      wasm.get(t), wasm.f32x4Const(Math.LOG2E), wasm.f32x4Mul, wasm.f32x4Nearest, wasm.set(n),
      wasm.get(t), wasm.get(n), wasm.f32x4Const(LN2_HIGH), wasm.f32x4Mul, wasm.f32x4Sub, wasm.get(n), wasm.f32x4Const(LN2_LOW), wasm.f32x4Mul, wasm.f32x4Sub, wasm.set(r),
      // slope = cdf + v exp(r) 2^n / sqrt(2 pi)
      wasm.get(slope), wasm.get(cdf), wasm.get(v),
      ...horner(r, EXP_P), wasm.get(r), wasm.get(r), wasm.f32x4Mul, wasm.f32x4Mul, wasm.get(r), wasm.f32x4Add, wasm.f32x4Const(1), wasm.f32x4Add,
      wasm.get(n), wasm.i32x4TruncSatF32x4S, wasm.i32x4Const([127, 127, 127, 127]), wasm.i32x4Add, wasm.i32Const(23), wasm.i32x4Shl, wasm.f32x4Mul,
      wasm.f32x4Const(INV_SQRT_2PI), wasm.f32x4Mul, wasm.f32x4Mul, wasm.f32x4Add, wasm.v128Store(0),
      ...advance(y, 16), ...advance(slope, 16),
    ]),
  };
}

/**
 * dropout(x, y, end, key, threshold, scale): the twin of dropoutRange, eight units (four pairs,
 * four hashes) per iteration. A unit's keep mask (all ones or zeros from the comparison) ANDed
 * with the scale gives scale or +0, so y = x * (keep ? scale : 0) exactly as the contract says.
 */
export function dropoutFunction(): WasmFunction {
  const [x, y, end, key, threshold, scale, counter, h, keepLow, keepHigh, scales, thresholds] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const xorShiftRight = (bits: number): number[][] => [wasm.get(h), wasm.get(h), wasm.i32Const(bits), wasm.i32x4ShrU, wasm.v128Xor, wasm.set(h)];
  const times = (factor: number): number[][] => [wasm.get(h), wasm.i32x4Const([factor, factor, factor, factor]), wasm.i32x4Mul, wasm.set(h)];
  // Units 2p, 2p+1 of pairs p..p+3 are [low p, high p, low p+1, high p+1], [low p+2, ...]: lanes of keepLow (bytes 0-15) and keepHigh (16-31) interleaved.
  const lanes = (first: number, second: number) => [first, second].flatMap((lane) => [lane, lane + 4]).flatMap((lane) => [0, 1, 2, 3].map((b) => (lane < 4 ? lane * 4 : 16 + (lane - 4) * 4) + b));
  const apply = (offset: number, pairs: [number, number]): number[][] => [
    wasm.get(y), wasm.get(x), wasm.v128Load(offset), wasm.get(keepLow), wasm.get(keepHigh), wasm.i8x16Shuffle(lanes(...pairs)), wasm.get(scales), wasm.v128And, wasm.f32x4Mul, wasm.v128Store(offset),
  ];
  const step = DROPOUT_WEYL_STEP;
  return {
    name: 'dropout',
    params: [I32, I32, I32, I32, I32, F32],
    locals: [V128, V128, V128, V128, V128, V128],
    code: [
      wasm.get(key), wasm.i32x4Splat, wasm.i32x4Const([0, step, 2 * step, 3 * step]), wasm.i32x4Add, wasm.set(counter),
      wasm.get(scale), wasm.f32x4Splat, wasm.set(scales),
      wasm.get(threshold), wasm.i32x4Splat, wasm.set(thresholds),
      ...loopUntil(x, end, 32, [
        // h = fmix32(counter), lane by lane
        wasm.get(counter), wasm.set(h),
        ...xorShiftRight(16), ...times(0x85ebca6b), ...xorShiftRight(13), ...times(0xc2b2ae35), ...xorShiftRight(16),
        wasm.get(h), wasm.i32x4Const([0xffff, 0xffff, 0xffff, 0xffff]), wasm.v128And, wasm.get(thresholds), wasm.i32x4GeS, wasm.set(keepLow),
        wasm.get(h), wasm.i32Const(16), wasm.i32x4ShrU, wasm.get(thresholds), wasm.i32x4GeS, wasm.set(keepHigh),
        ...apply(0, [0, 1]),
        ...apply(16, [2, 3]),
        wasm.get(counter), wasm.i32x4Const([4 * step, 4 * step, 4 * step, 4 * step]), wasm.i32x4Add, wasm.set(counter),
        ...advance(y, 32),
      ]),
    ],
  };
}

/**
 * layerNorm(x, y, means, rstds, gamma, beta, rows, columns, epsilon): the float32 twin of the
 * JavaScript layerNorm for columns a multiple of 4, row by row: the mean (four partial sums),
 * the variance about it, then y.
 */
export function layerNormFunction(): WasmFunction {
  const [x, y, means, rstds, gamma, beta, rows, columns, epsilon] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [c, rowBytes, xEnd, sum, meanV, rstdV, centred, mean, rstd] = [9, 10, 11, 12, 13, 14, 15, 16, 17];
  const overColumns = [wasm.get(columns), wasm.f32ConvertI32U, wasm.f32Div];
  return {
    name: 'layerNorm',
    params: [I32, I32, I32, I32, I32, I32, I32, I32, F32],
    locals: [I32, I32, I32, V128, V128, V128, V128, F32, F32],
    code: [
      wasm.get(columns), wasm.i32Const(4), wasm.i32Mul, wasm.set(rowBytes),
      wasm.get(x), wasm.get(rows), wasm.get(rowBytes), wasm.i32Mul, wasm.i32Add, wasm.set(xEnd),
      ...loopUntil(x, xEnd, { local: rowBytes }, [
        ZERO(), wasm.set(sum), wasm.i32Const(0), wasm.set(c),
        ...loopUntil(c, rowBytes, 16, [wasm.get(sum), ...at(x, c), wasm.v128Load(0), wasm.f32x4Add, wasm.set(sum)]),
        ...horizontalSum(sum), ...overColumns, wasm.tee(mean), wasm.f32x4Splat, wasm.set(meanV),
        ZERO(), wasm.set(sum), wasm.i32Const(0), wasm.set(c),
        ...loopUntil(c, rowBytes, 16, [
          ...at(x, c), wasm.v128Load(0), wasm.get(meanV), wasm.f32x4Sub, wasm.set(centred),
          wasm.get(sum), wasm.get(centred), wasm.get(centred), wasm.f32x4Mul, wasm.f32x4Add, wasm.set(sum),
        ]),
        // rstd = 1 / sqrt(variance + epsilon)
        wasm.f32Const(1), ...horizontalSum(sum), ...overColumns, wasm.get(epsilon), wasm.f32Add, wasm.f32Sqrt, wasm.f32Div, wasm.tee(rstd), wasm.f32x4Splat, wasm.set(rstdV),
        wasm.i32Const(0), wasm.set(c),
        ...loopUntil(c, rowBytes, 16, [
          ...at(y, c),
          ...at(x, c), wasm.v128Load(0), wasm.get(meanV), wasm.f32x4Sub, wasm.get(rstdV), wasm.f32x4Mul,
          ...at(gamma, c), wasm.v128Load(0), wasm.f32x4Mul, ...at(beta, c), wasm.v128Load(0), wasm.f32x4Add,
          wasm.v128Store(0),
        ]),
        wasm.get(means), wasm.get(mean), wasm.f32Store(0), wasm.get(rstds), wasm.get(rstd), wasm.f32Store(0),
        ...advance(means, 4), ...advance(rstds, 4), ...advance(y, { local: rowBytes }),
      ]),
    ],
  };
}

/**
 * layerNormGrad(dy, x, means, rstds, gamma, dx, dgamma, dbeta, rows, columns): the float32 twin
 * of the JavaScript layerNormGrad for columns a multiple of 4, one pass for a row's two means
 * and the dgamma, dbeta sums (ADDED to what those arrays hold), one for dx.
 */
export function layerNormGradFunction(): WasmFunction {
  const [dy, x, means, rstds, gamma, dx, dgamma, dbeta, rows, columns] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const [c, rowBytes, xEnd, sumG, sumGXhat, meanV, rstdV, xhat, g, upstream, meanG, meanGXhat] = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
  const meanOver = (sum: number, into: number): number[][] => [...horizontalSum(sum), wasm.get(columns), wasm.f32ConvertI32U, wasm.f32Div, wasm.f32x4Splat, wasm.set(into)];
  const normalised = [...at(x, c), wasm.v128Load(0), wasm.get(meanV), wasm.f32x4Sub, wasm.get(rstdV), wasm.f32x4Mul];
  return {
    name: 'layerNormGrad',
    params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, I32],
    locals: [I32, I32, I32, V128, V128, V128, V128, V128, V128, V128, V128, V128],
    code: [
      wasm.get(columns), wasm.i32Const(4), wasm.i32Mul, wasm.set(rowBytes),
      wasm.get(x), wasm.get(rows), wasm.get(rowBytes), wasm.i32Mul, wasm.i32Add, wasm.set(xEnd),
      ...loopUntil(x, xEnd, { local: rowBytes }, [
        wasm.get(means), wasm.f32Load(0), wasm.f32x4Splat, wasm.set(meanV),
        wasm.get(rstds), wasm.f32Load(0), wasm.f32x4Splat, wasm.set(rstdV),
        ZERO(), wasm.set(sumG), ZERO(), wasm.set(sumGXhat), wasm.i32Const(0), wasm.set(c),
        ...loopUntil(c, rowBytes, 16, [
          ...at(dy, c), wasm.v128Load(0), wasm.set(upstream),
          ...normalised, wasm.set(xhat),
          wasm.get(upstream), ...at(gamma, c), wasm.v128Load(0), wasm.f32x4Mul, wasm.set(g),
          wasm.get(sumG), wasm.get(g), wasm.f32x4Add, wasm.set(sumG),
          wasm.get(sumGXhat), wasm.get(g), wasm.get(xhat), wasm.f32x4Mul, wasm.f32x4Add, wasm.set(sumGXhat),
          ...at(dgamma, c), ...at(dgamma, c), wasm.v128Load(0), wasm.get(upstream), wasm.get(xhat), wasm.f32x4Mul, wasm.f32x4Add, wasm.v128Store(0),
          ...at(dbeta, c), ...at(dbeta, c), wasm.v128Load(0), wasm.get(upstream), wasm.f32x4Add, wasm.v128Store(0),
        ]),
        ...meanOver(sumG, meanG), ...meanOver(sumGXhat, meanGXhat),
        wasm.i32Const(0), wasm.set(c),
        // dx = rstd (dy gamma - mean(g) - xhat mean(g xhat))
        ...loopUntil(c, rowBytes, 16, [
          ...at(dx, c),
          ...at(dy, c), wasm.v128Load(0), ...at(gamma, c), wasm.v128Load(0), wasm.f32x4Mul, wasm.get(meanG), wasm.f32x4Sub,
          ...normalised, wasm.get(meanGXhat), wasm.f32x4Mul, wasm.f32x4Sub,
          wasm.get(rstdV), wasm.f32x4Mul, wasm.v128Store(0),
        ]),
        ...advance(means, 4), ...advance(rstds, 4), ...advance(dy, { local: rowBytes }), ...advance(dx, { local: rowBytes }),
      ]),
    ],
  };
}
