import { advance, at, F32, horizontalSum, horner, I32, loopUntil, V128, type WasmFunction, wasm, ZERO } from '../../wasm/simd/assembler.ts';
import { ERF_P, ERF_Q, INV_SQRT_2PI } from './approximation.ts';

/* TesseraGeluExact's SIMD function (assembled into ../../wasm/simd/module.ts, text in module.wat): the float32 twin of wasm.ts's loop, four lanes per instruction. */

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
