import { advance, at, F32, horizontalSum, horner, I32, loopUntil, V128, type WasmFunction, wasm, ZERO } from '../../wasm/simd/assembler.ts';

/* TesseraLayerNorm's and TesseraLayerNormGrad's SIMD functions (assembled into ../../wasm/simd/module.ts, text in module.wat). */

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
