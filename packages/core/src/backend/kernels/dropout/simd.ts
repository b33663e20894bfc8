import { advance, at, F32, horizontalSum, horner, I32, loopUntil, V128, type WasmFunction, wasm, ZERO } from '../../wasm/simd/assembler.ts';
import { DROPOUT_WEYL_STEP } from './reference.ts';

/* TesseraDropout's SIMD function (assembled into ../../wasm/simd/module.ts, text in module.wat). */

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
