import { advance, at, I32, loopUntil, V128, type WasmFunction, wasm } from './assembler.ts';

/* ------------------------------------------------------------------------------------------ *
 * The SIMD functions behind the kernel replacements (../kernel-replacements.ts): transposes   *
 * and column sums on the wasm heap.                                                           *
 * ------------------------------------------------------------------------------------------ */

/**
 * transpose(x, y, rows, columns): y = x^T for a row-major [rows, columns] float32 matrix, both
 * a multiple of 4, in 4x4 blocks (four loads, eight shuffles, four stores), `blockRows` rows of
 * x at a time (4, or 16 in 'transpose16'). With 16, the 4 x 16 bytes stored into each of four
 * rows of y for four blocks fill whole 64-byte cache lines at once: where y's rows lie a
 * multiple of 4 KiB apart ([8192, 256] -> [256, 8192]: 32 KiB), lines written a quarter at a
 * time all compete for the same cache sets and are evicted before they are complete.
 */
export function transposeFunction(blockRows: 4 | 16): WasmFunction {
  const [x, y, rows, columns] = [0, 1, 2, 3];
  const [c, rowBytes, blockBytes, xEnd, yBlock, yRowBytes, fourYRows, a, b, cRow, d, ab, abHigh, cd, cdHigh] = [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18];
  const times = (local: number, factor: number, into: number): number[][] => [wasm.get(local), wasm.i32Const(factor), wasm.i32Mul, wasm.set(into)];
  // Lane k of the first operand is bytes 4k..4k+3, of the second 16+4k..16+4k+3.
  const lanes = (...indices: number[]) => indices.flatMap((lane) => [0, 1, 2, 3].map((byte) => 4 * lane + byte));
  const load = (row: number, into: number): number[][] => [wasm.get(x), wasm.get(c), wasm.i32Add, wasm.get(rowBytes), wasm.i32Const(row), wasm.i32Mul, wasm.i32Add, wasm.v128Load(0), wasm.set(into)];
  const store = (row: number, offset: number, first: number, second: number, pick: number[]): number[][] => [
    wasm.get(yBlock), wasm.get(yRowBytes), wasm.i32Const(row), wasm.i32Mul, wasm.i32Add,
    wasm.get(first), wasm.get(second), wasm.i8x16Shuffle(lanes(...pick)), wasm.v128Store(offset),
  ];
  const interleave = (first: number, second: number, pick: number[], into: number): number[][] => [wasm.get(first), wasm.get(second), wasm.i8x16Shuffle(lanes(...pick)), wasm.set(into)];
  // Rows 4k..4k+3 of the block: [a0 b0 a1 b1], [a2 b2 a3 b3], [c0 d0 c1 d1], [c2 d2 c3 d3], then their halves paired.
  const fourByFour = (k: number): number[][] => [
    ...load(4 * k, a), ...load(4 * k + 1, b), ...load(4 * k + 2, cRow), ...load(4 * k + 3, d),
    ...interleave(a, b, [0, 4, 1, 5], ab), ...interleave(a, b, [2, 6, 3, 7], abHigh),
    ...interleave(cRow, d, [0, 4, 1, 5], cd), ...interleave(cRow, d, [2, 6, 3, 7], cdHigh),
    ...store(0, 16 * k, ab, cd, [0, 1, 4, 5]), ...store(1, 16 * k, ab, cd, [2, 3, 6, 7]),
    ...store(2, 16 * k, abHigh, cdHigh, [0, 1, 4, 5]), ...store(3, 16 * k, abHigh, cdHigh, [2, 3, 6, 7]),
  ];
  return {
    name: blockRows === 4 ? 'transpose' : 'transpose16',
    params: [I32, I32, I32, I32],
    locals: [I32, I32, I32, I32, I32, I32, I32, V128, V128, V128, V128, V128, V128, V128, V128],
    code: [
      ...times(columns, 4, rowBytes), ...times(rowBytes, blockRows, blockBytes), ...times(rows, 4, yRowBytes), ...times(yRowBytes, 4, fourYRows),
      wasm.get(x), wasm.get(rows), wasm.get(rowBytes), wasm.i32Mul, wasm.i32Add, wasm.set(xEnd),
      ...loopUntil(x, xEnd, { local: blockBytes }, [
        wasm.i32Const(0), wasm.set(c), wasm.get(y), wasm.set(yBlock),
        ...loopUntil(c, rowBytes, 16, [...Array.from({ length: blockRows / 4 }, (_, k) => fourByFour(k)).flat(), ...advance(yBlock, { local: fourYRows })]),
        ...advance(y, 4 * blockRows),
      ]),
    ],
  };
}

/** columnSums(x, sums, rows, columns): ADDS the column sums of a row-major [rows, columns] block (columns a multiple of 4) into `sums`. */
export function columnSumsFunction(): WasmFunction {
  const [x, sums, rows, columns, c, rowBytes, xEnd] = [0, 1, 2, 3, 4, 5, 6];
  return {
    name: 'columnSums',
    params: [I32, I32, I32, I32],
    locals: [I32, I32, I32],
    code: [
      wasm.get(columns), wasm.i32Const(4), wasm.i32Mul, wasm.set(rowBytes),
      wasm.get(x), wasm.get(rows), wasm.get(rowBytes), wasm.i32Mul, wasm.i32Add, wasm.set(xEnd),
      ...loopUntil(x, xEnd, { local: rowBytes }, [
        wasm.i32Const(0), wasm.set(c),
        ...loopUntil(c, rowBytes, 16, [...at(sums, c), ...at(sums, c), wasm.v128Load(0), ...at(x, c), wasm.v128Load(0), wasm.f32x4Add, wasm.v128Store(0)]),
      ]),
    ],
  };
}

/**
 * blockTranspose(x, y, rows, columns, blockBytes): y = x^T for a [rows, columns] matrix whose
 * entries are blocks of blockBytes (a multiple of 16) moved whole, as image patches are.
 */
export function blockTransposeFunction(): WasmFunction {
  const [x, y, rows, columns, blockBytes, rowBytes, xEnd, k, i, target, targetStride] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  return {
    name: 'blockTranspose',
    params: [I32, I32, I32, I32, I32],
    locals: [I32, I32, I32, I32, I32, I32],
    code: [
      wasm.get(columns), wasm.get(blockBytes), wasm.i32Mul, wasm.set(rowBytes),
      wasm.get(rows), wasm.get(blockBytes), wasm.i32Mul, wasm.set(targetStride),
      wasm.get(x), wasm.get(rows), wasm.get(rowBytes), wasm.i32Mul, wasm.i32Add, wasm.set(xEnd),
      ...loopUntil(x, xEnd, { local: rowBytes }, [
        wasm.get(y), wasm.set(target), wasm.i32Const(0), wasm.set(k),
        ...loopUntil(k, rowBytes, { local: blockBytes }, [
          wasm.i32Const(0), wasm.set(i),
          ...loopUntil(i, blockBytes, 16, [...at(target, i), ...at(x, k), wasm.get(i), wasm.i32Add, wasm.v128Load(0), wasm.v128Store(0)]),
          ...advance(target, { local: targetStride }),
        ]),
        ...advance(y, { local: blockBytes }),
      ]),
    ],
  };
}
