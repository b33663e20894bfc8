import * as tf from '@tensorflow/tfjs';
import { DROPOUT_WEYL_STEP, dropoutKey, dropoutScale, dropoutThreshold, FUSED_KERNELS } from './fused.ts';

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
 * transpose is slow: ~20 ms for that shape, against ~1.5-3 ms for a JavaScript loop over the same
 * memory and ~0.5-1 for the SIMD one (rows a multiple of 4 long). Every bias gradient is such a
 * sum. Float32 within blocks of SUM_BLOCK_ROWS rows, float64 across them (the JavaScript loop:
 * float64 throughout), then rounded once. Anything else goes to the original kernel.
 */
function sumOverLeadingAxes(originalSum: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32') return originalSum(args);
    const backend = args.backend as HeapBackend;
    const kept = x.shape.slice(axes.length);
    const rows = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const columns = kept.reduce((a, b) => a * b, 1);
    const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
    // Views on the wasm heap: taken after the allocation above, which may grow (and so detach) it.
    const input = backend.typedArrayFromHeap(x);
    const output = backend.typedArrayFromHeap(out);
    const totals = new Float64Array(columns);
    const simd = simdKernels(backend);
    if (simd && columns % 4 === 0) {
      sumInBlocks(rows, [output], [totals], (row, count) => simd.columnSums(input.byteOffset + 4 * row * columns, output.byteOffset, count, columns));
      output.set(totals);
      return out;
    }
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
    output.set(totals);
    return out;
  };
}

/**
 * The backend's heap allocator and views (every output is allocated before any view is taken),
 * and its Emscripten module, whose memory the SIMD kernels import.
 */
interface HeapBackend extends RefCountingBackend {
  wasm?: { asm?: { memory?: object } };
}

/* --------------------------- the SIMD kernels, in WebAssembly ---------------------------- *
 * V8 runs the JavaScript loops one float64 at a time; WebAssembly SIMD does four float32 lanes *
 * per instruction. The kernels are a small module that imports the wasm backend's own memory, *
 * so they read and write the tensors where they lie. It is assembled below from the handful of *
 * instructions in `wasm` (no toolchain needed); each function is tested against fused.ts's     *
 * references or the cpu backend.                                                               *
 * ---------------------------------------------------------------------------------------- */

/** Unsigned LEB128, as the binary format writes sizes, indices and opcodes. */
function unsignedLeb(value: number): number[] {
  const bytes: number[] = [];
  do {
    const low = value & 0x7f;
    value >>>= 7;
    bytes.push(value ? low | 0x80 : low);
  } while (value);
  return bytes;
}

/** Signed LEB128 of an int32, as i32.const writes its immediate. */
function signedLeb(value: number): number[] {
  const bytes: number[] = [];
  value |= 0;
  for (;;) {
    const low = value & 0x7f;
    value >>= 7;
    if ((value === 0 && !(low & 0x40)) || (value === -1 && low & 0x40)) return [...bytes, low];
    bytes.push(low | 0x80);
  }
}

const littleEndian = (array: Float32Array | Int32Array): number[] => [...new Uint8Array(array.buffer)];
const simdOp = (code: number): number[] => [0xfd, ...unsignedLeb(code)];
/** Memory access immediates: alignment 2^2 (float data; wasm allows any alignment), then the offset. */
const memarg = (offset: number): number[] => [2, ...unsignedLeb(offset)];

/** The instructions the kernels use, by their text-format names (WebAssembly core spec 2.0, SIMD included). */
const wasm = {
  get: (index: number) => [0x20, ...unsignedLeb(index)],
  set: (index: number) => [0x21, ...unsignedLeb(index)],
  tee: (index: number) => [0x22, ...unsignedLeb(index)],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  brIf: (depth: number) => [0x0d, ...unsignedLeb(depth)],
  i32Const: (value: number) => [0x41, ...signedLeb(value)],
  i32Add: [0x6a],
  i32Mul: [0x6c],
  i32LtU: [0x49],
  f32Load: (offset: number) => [0x2a, ...memarg(offset)],
  f32Store: (offset: number) => [0x38, ...memarg(offset)],
  f32Const: (value: number) => [0x43, ...littleEndian(new Float32Array([value]))],
  f32Add: [0x92],
  f32Div: [0x95],
  f32Sqrt: [0x91],
  f32ConvertI32U: [0xb3],
  f32x4ExtractLane: (lane: number) => [...simdOp(0x1f), lane],
  i32GeU: [0x4f],
  v128Load: (offset: number) => [...simdOp(0x00), ...memarg(offset)],
  v128Store: (offset: number) => [...simdOp(0x0b), ...memarg(offset)],
  f32x4Const: (value: number) => [...simdOp(0x0c), ...littleEndian(new Float32Array([value, value, value, value]))],
  i32x4Const: (lanes: number[]) => [...simdOp(0x0c), ...littleEndian(Int32Array.from(lanes))],
  i8x16Shuffle: (lanes: number[]) => [...simdOp(0x0d), ...lanes],
  i32x4Splat: simdOp(0x11),
  f32x4Splat: simdOp(0x13),
  i32x4GeS: simdOp(0x3f),
  v128And: simdOp(0x4e),
  v128Xor: simdOp(0x51),
  f32x4Nearest: simdOp(0x6a),
  i32x4Shl: simdOp(0xab),
  i32x4ShrU: simdOp(0xad),
  i32x4Add: simdOp(0xae),
  i32x4Mul: simdOp(0xb5),
  f32x4Add: simdOp(0xe4),
  f32x4Sub: simdOp(0xe5),
  f32x4Mul: simdOp(0xe6),
  f32x4Div: simdOp(0xe7),
  f32x4Pmin: simdOp(0xea),
  f32x4Pmax: simdOp(0xeb),
  i32x4TruncSatF32x4S: simdOp(0xf8),
};

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;

/** A function of the module: its name, parameter types, the types of its extra locals, its code. */
interface WasmFunction {
  name: string;
  params: number[];
  locals: number[];
  code: number[][];
}

/** Horner's rule over the four lanes of local `x`: c[0] x^(n-1) + ... + c[n-1]. */
function horner(x: number, coefficients: readonly number[]): number[][] {
  return [wasm.f32x4Const(coefficients[0]!), ...coefficients.slice(1).flatMap((c) => [wasm.get(x), wasm.f32x4Mul, wasm.f32x4Const(c), wasm.f32x4Add])];
}

/** A step in bytes: a constant, or an i32 local's value. */
type Step = number | { local: number };
const stepCode = (step: Step): number[] => (typeof step === 'number' ? wasm.i32Const(step) : wasm.get(step.local));

/** `pointer += step` for an i32 local. */
const advance = (pointer: number, step: Step): number[][] => [wasm.get(pointer), stepCode(step), wasm.i32Add, wasm.set(pointer)];

/** A loop over [x, end) by `step` bytes that runs `body` at least once unless x >= end already. */
function loopUntil(x: number, end: number, step: Step, body: number[][]): number[][] {
  return [
    wasm.block, wasm.get(x), wasm.get(end), wasm.i32GeU, wasm.brIf(0),
    wasm.loop, ...body,
    wasm.get(x), stepCode(step), wasm.i32Add, wasm.tee(x), wasm.get(end), wasm.i32LtU, wasm.brIf(0),
    wasm.end, wasm.end,
  ];
}

/** The four lanes of local `v` added into one f32: (v0 + v1) + (v2 + v3). */
const horizontalSum = (v: number): number[][] => [
  wasm.get(v), wasm.f32x4ExtractLane(0), wasm.get(v), wasm.f32x4ExtractLane(1), wasm.f32Add,
  wasm.get(v), wasm.f32x4ExtractLane(2), wasm.get(v), wasm.f32x4ExtractLane(3), wasm.f32Add, wasm.f32Add,
];

/** The address base + c (two i32 locals), for a load or a store. */
const at = (base: number, c: number): number[][] => [wasm.get(base), wasm.get(c), wasm.i32Add];
const ZERO = () => wasm.f32x4Const(0);

/** The coefficients of Eigen's float erf (generic_fast_erf_float), for the SIMD and the JavaScript GELU: odd over even polynomial on [-4, 4]. */
const ERF_P = [-1.60960333262415e-2, -2.95459980854025e-3, -7.34990630326855e-4, -5.69250639462346e-5, -2.10102402082508e-6, 2.77068142495902e-8, -2.72614225801306e-10] as const;
const ERF_Q = [-1.42647390514189e-2, -7.37332916720468e-3, -1.68282697438203e-3, -2.13374055278905e-4, -1.45660718464996e-5] as const;
const [P1, P3, P5, P7, P9, P11, P13] = ERF_P;
const [Q0, Q2, Q4, Q6, Q8] = ERF_Q;

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Cephes' expf: exp(r) = 1 + r + r^2 p(r) on [-ln2/2, ln2/2], ln2 split in two for the reduction. */
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1] as const;
const LN2_HIGH = 0.693359375;
const LN2_LOW = -2.12194440e-4;

/**
 * gelu(x, y, slope, end): the float32 twin of geluExactRange, four units per iteration, from byte
 * address x to end (a multiple of 16 bytes further). 2^n is built in the exponent bits, n >= -126
 * after the clamp of t at -87, so it is always a normal float.
 */
function geluFunction(): WasmFunction {
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
function dropoutFunction(): WasmFunction {
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
function layerNormFunction(): WasmFunction {
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
function layerNormGradFunction(): WasmFunction {
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

/**
 * transpose(x, y, rows, columns): y = x^T for a row-major [rows, columns] float32 matrix, both
 * a multiple of 4, in 4x4 blocks (four loads, eight shuffles, four stores), `blockRows` rows of
 * x at a time (4, or 16 in 'transpose16'). With 16, the 4 x 16 bytes stored into each of four
 * rows of y for four blocks fill whole 64-byte cache lines at once: where y's rows lie a
 * multiple of 4 KiB apart ([8192, 256] -> [256, 8192]: 32 KiB), lines written a quarter at a
 * time all compete for the same cache sets and are evicted before they are complete.
 */
function transposeFunction(blockRows: 4 | 16): WasmFunction {
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
function columnSumsFunction(): WasmFunction {
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
function blockTransposeFunction(): WasmFunction {
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

/** A module of `functions`, importing its memory as env.memory, exporting each function by name. */
function assembleModule(functions: WasmFunction[]): Uint8Array {
  const vector = (items: number[][]): number[] => [...unsignedLeb(items.length), ...items.flat()];
  const section = (id: number, content: number[]): number[] => [id, ...unsignedLeb(content.length), ...content];
  const name = (text: string): number[] => vector([...text].map((c) => [c.charCodeAt(0)]));
  const types = functions.map((f) => [0x60, ...vector(f.params.map((p) => [p])), 0]);
  const imports = [[...name('env'), ...name('memory'), 0x02, 0x00, 0x00]];
  const exports = functions.map((f, index) => [...name(f.name), 0x00, ...unsignedLeb(index)]);
  const bodies = functions.map((f) => {
    const body = [...vector(f.locals.map((type) => [1, type])), ...f.code.flat(), ...wasm.end];
    return [...unsignedLeb(body.length), ...body];
  });
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...section(2, vector(imports)),
    ...section(3, vector(functions.map((_, index) => unsignedLeb(index)))),
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}

/** The SIMD kernels' exports: byte addresses in the backend's heap, counts as ends. */
interface SimdKernels {
  gelu(x: number, y: number, slope: number, end: number): void;
  dropout(x: number, y: number, end: number, key: number, threshold: number, scale: number): void;
  layerNorm(x: number, y: number, means: number, rstds: number, gamma: number, beta: number, rows: number, columns: number, epsilon: number): void;
  layerNormGrad(dy: number, x: number, means: number, rstds: number, gamma: number, dx: number, dgamma: number, dbeta: number, rows: number, columns: number): void;
  transpose(x: number, y: number, rows: number, columns: number): void;
  transpose16(x: number, y: number, rows: number, columns: number): void;
  columnSums(x: number, sums: number, rows: number, columns: number): void;
  blockTranspose(x: number, y: number, rows: number, columns: number, blockBytes: number): void;
}

/** The part of the WebAssembly JavaScript API used here (this package compiles without the DOM library, which declares it). */
interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: object };
}
const webAssembly = (globalThis as { WebAssembly?: WebAssemblyApi }).WebAssembly;

let simdModule: object | null | undefined;
/** The kernels instantiated over each backend memory (a WebAssembly.Memory), once; null where they cannot be. */
const simdInstances = new WeakMap<object, SimdKernels | null>();

/** Whether the fused kernels run in WebAssembly SIMD on the active backend (else in JavaScript only). */
export function usesSimdKernels(): boolean {
  return simdKernels(tf.backend() as unknown as HeapBackend) !== undefined;
}

/**
 * The SIMD kernels bound to this backend's memory, or undefined where they cannot run (no
 * WebAssembly SIMD, or a backend build that does not expose its memory): the JavaScript loops then do everything.
 */
function simdKernels(heap: HeapBackend): SimdKernels | undefined {
  const memory = heap.wasm?.asm?.memory;
  if (!memory || !webAssembly) return undefined;
  if (simdModule === undefined) {
    const bytes = assembleModule([geluFunction(), dropoutFunction(), layerNormFunction(), layerNormGradFunction(), transposeFunction(4), transposeFunction(16), columnSumsFunction(), blockTransposeFunction()]);
    simdModule = webAssembly.validate(bytes) ? new webAssembly.Module(bytes) : null;
  }
  if (simdModule === null) return undefined;
  let kernels = simdInstances.get(memory);
  if (kernels === undefined) {
    try {
      kernels = new webAssembly.Instance(simdModule, { env: { memory } }).exports as SimdKernels;
    } catch {
      // A shared memory (the multi-threaded build, in browsers) does not match the import.
      kernels = null;
    }
    simdInstances.set(memory, kernels);
  }
  return kernels ?? undefined;
}

/* ----------------------------------- fused kernels -------------------------------------- *
 * The kernels of fused.ts (which states the exact math) on the wasm heap: one pass where the   *
 * composite path runs a chain of element-wise kernels, each reading and writing the whole      *
 * tensor. The bulk runs in the SIMD functions above (float32), the JavaScript loops (float64,  *
 * rounded once on the store) do the remainder and the fallback.                                *
 * ---------------------------------------------------------------------------------------- */

/** 2^-k for k in [0, 127]: the exponent part of exp(t) for t in [-88, 0], looked up instead of built from bits. */
const NEGATIVE_POWERS_OF_TWO = Float64Array.from({ length: 128 }, (_, k) => 2 ** -k);

/**
 * TesseraGeluExact on the units from `start` on, in JavaScript: the tail the SIMD loop leaves (fewer than
 * four units), or everything where WebAssembly SIMD is missing. The same math as the SIMD kernel
 * below, in float64: erf is Eigen's float rational approximation (TensorFlow's own erf for
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

/** TesseraLayerNorm in JavaScript (float64), where the SIMD kernel cannot run: the mean, the variance about it (two passes over a row in cache), then y. */
function layerNormRows(input: Float32Array, gamma: Float32Array, beta: Float32Array, epsilon: number, y: Float32Array, means: Float32Array, rstds: Float32Array, { rows, columns }: Rows): void {
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
    layerNormRows(input, gamma, beta, epsilon, y, means, rstds, shape);
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

/** Rows per block of float32 column sums: float32 rounding spans this many rows, float64 the rest. */
const SUM_BLOCK_ROWS = 32;

/**
 * Column totals in float64 from a SIMD kernel that ADDS a block's float32 column sums into
 * `accumulators` (views of the heap, each `totals[k]`'s length): for each block of
 * SUM_BLOCK_ROWS rows the accumulators start at zero and are then folded into `totals`.
 */
function sumInBlocks(rows: number, accumulators: Float32Array[], totals: Float64Array[], addBlock: (row: number, count: number) => void): void {
  for (let row = 0; row < rows; row += SUM_BLOCK_ROWS) {
    for (const accumulator of accumulators) accumulator.fill(0);
    addBlock(row, Math.min(SUM_BLOCK_ROWS, rows - row));
    accumulators.forEach((accumulator, k) => {
      const total = totals[k]!;
      for (let c = 0; c < accumulator.length; c++) total[c]! += accumulator[c]!;
    });
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
  return simd ? Object.values(FUSED_KERNELS) : [FUSED_KERNELS.geluExact];
}

/** The fused kernels this file implements for wasm, registered or not (see fusedKernelsToRegister). */
export const WASM_FUSED_KERNELS: Record<string, tf.KernelFunc> = {
  [FUSED_KERNELS.geluExact]: geluExact as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNorm]: layerNorm as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNormGrad]: layerNormGrad as unknown as tf.KernelFunc,
  [FUSED_KERNELS.dropout]: dropout as unknown as tf.KernelFunc,
};

/** A transpose as a batch of matrix transposes whose entries are blocks of `block` values moved whole. */
export interface BatchedMatrixTranspose {
  batch: number;
  rows: number;
  columns: number;
  block: number;
}

/**
 * A transpose as a batch of matrix transposes, [batch, rows, columns, block] ->
 * [batch, columns, rows, block], or undefined when `perm` moves axes otherwise. Axes that stay
 * adjacent and in order are merged first: [0, 2, 1] on [128, 64, 256] is 128 transposes of
 * [64, 256]; image patches' [0, 1, 3, 2, 4, 5] on [128, 8, 8, 8, 8, 3] is 1024 transposes of
 * [8, 8] blocks of 24 values.
 */
export function asBatchedMatrixTranspose(shape: readonly number[], perm: readonly number[]): BatchedMatrixTranspose | undefined {
  // Runs of consecutive input axes in the output, in output order.
  const runs: number[][] = [];
  for (const axis of perm) {
    const last = runs[runs.length - 1];
    if (last && axis === last[last.length - 1]! + 1) last.push(axis);
    else runs.push([axis]);
  }
  const inInputOrder = [...runs].sort((p, q) => p[0]! - q[0]!);
  const sizes = inInputOrder.map((run) => run.reduce((product, axis) => product * shape[axis]!, 1));
  const [a, b, c, d] = sizes as [number, number, number?, number?];
  switch (runs.map((run) => inInputOrder.indexOf(run)).join(',')) {
    case '1,0':
      return { batch: 1, rows: a, columns: b, block: 1 };
    case '0,2,1':
      return { batch: a, rows: b, columns: c!, block: 1 };
    case '1,0,2':
      return { batch: 1, rows: a, columns: b, block: c! };
    case '0,2,1,3':
      return { batch: a, rows: b, columns: c!, block: d! };
    default:
      return undefined;
  }
}

/**
 * Transpose of float32 matrices (or batches of them) in WebAssembly SIMD: single values in 4x4
 * blocks when both sides are a multiple of 4, blocks of a multiple of 4 values copied whole. The
 * wasm backend's own kernel moves one value at a time with index arithmetic, ~10 ms for
 * [8192, 256] or [32768, 64], where this takes ~1.5-3. Those transposes are every dense layer's
 * backward pass (x^T dy), a token-mixing model's transposes and image patches. Anything else
 * goes to the original kernel.
 */
function transposeInBlocks(originalTranspose: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const perm = (args.attrs as unknown as { perm: number[] }).perm;
    const layout = x.dtype === 'float32' ? asBatchedMatrixTranspose(x.shape, perm) : undefined;
    const heap = args.backend as HeapBackend;
    const simd = simdKernels(heap);
    if (!layout || !simd) return originalTranspose(args);
    const { batch, rows, columns, block } = layout;
    const singleValues = block === 1 && rows % 4 === 0 && columns % 4 === 0;
    if (!singleValues && (block === 1 || block % 4 !== 0)) return originalTranspose(args);
    const out = heap.makeOutput(perm.map((axis) => x.shape[axis]!), 'float32');
    const [input, output] = [heap.typedArrayFromHeap(x), heap.typedArrayFromHeap(out)];
    const matrixBytes = 4 * rows * columns * block;
    for (let b = 0; b < batch; b++) {
      const [from, to] = [input.byteOffset + b * matrixBytes, output.byteOffset + b * matrixBytes];
      if (singleValues && rows % 16 === 0) simd.transpose16(from, to, rows, columns);
      else if (singleValues) simd.transpose(from, to, rows, columns);
      else simd.blockTranspose(from, to, rows, columns, 4 * block);
    }
    return out;
  };
}

/** Values a row must have for sliceInRows: shorter rows cost more in calls than the original kernel's loop. */
const SLICE_MIN_ROW = 16;

/**
 * Slice as a copy of whole rows: where the axes left of the first cut axis are whole, those right
 * of the last cut axis too, and those between are cut to one index ([128, 64, 512] ->
 * [128, 64, 256], a gating unit's halves; [128, 64, 2, 129] -> [128, 64, 1, 127]), every output
 * row is one contiguous run of the input, moved by copyWithin on the wasm heap. The wasm backend's
 * own kernel moves such a slice value by value (~10 ms for that shape, against ~1). Contiguous
 * slices (which it shares without a copy), short rows, other dtypes go to the original kernel.
 */
function sliceInRows(originalSlice: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    if (x.dtype !== 'float32') return originalSlice(args);
    const [starts, sizes] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, begin, size) as [number[], number[]];
    const shape = x.shape;
    const isCut = (extent: number, axis: number) => extent !== shape[axis];
    const cut = sizes.findIndex(isCut);
    const lastCut = sizes.length - 1 - [...sizes].reverse().findIndex((extent, k) => isCut(extent, sizes.length - 1 - k));
    // Between the first and the last cut axis only single indices: [.., 2, 129] -> [.., 1, 127].
    if (cut < 0 || sizes.slice(cut, lastCut).some((extent) => extent !== 1)) return originalSlice(args);
    const valuesPerIndex = (axis: number) => shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const rows = shape.slice(0, cut).reduce((a, b) => a * b, 1);
    const row = sizes[lastCut]! * valuesPerIndex(lastCut);
    if (rows === 1 || row < SLICE_MIN_ROW) return originalSlice(args);
    const heap = args.backend as HeapBackend;
    const out = heap.makeOutput(sizes, 'float32');
    const [input, output] = [heap.typedArrayFromHeap(x), heap.typedArrayFromHeap(out)];
    const memory = new Float32Array(input.buffer);
    const stride = shape[cut]! * valuesPerIndex(cut);
    let from = input.byteOffset / 4;
    for (let axis = cut; axis <= lastCut; axis++) from += starts[axis]! * valuesPerIndex(axis);
    const to = output.byteOffset / 4;
    for (let r = 0; r < rows; r++) memory.copyWithin(to + r * row, from + r * stride, from + r * stride + row);
    return out;
  };
}

/**
 * Reverse along the last axis only (a half-spectrum DFT's mirror image), one row at a time: the
 * wasm backend's own kernel computes every value's source index in general (~34 ms for
 * [128, 64, 127], against ~2). Other axes and dtypes go to the original kernel.
 */
function reverseLastAxis(originalReverse: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { dims } = args.attrs as unknown as { dims: number | number[] };
    const axes = tf.util.parseAxisParam(dims, x.shape);
    const last = x.shape.length - 1;
    if (x.dtype !== 'float32' || axes.length !== 1 || axes[0] !== last) return originalReverse(args);
    const heap = args.backend as HeapBackend;
    const out = heap.makeOutput(x.shape, 'float32');
    const [input, output] = [heap.typedArrayFromHeap(x), heap.typedArrayFromHeap(out)];
    const columns = x.shape[last]!;
    for (let start = 0; start < input.length; start += columns) {
      for (let c = 0, mirror = start + columns - 1; c < columns; c++, mirror--) output[start + c] = input[mirror]!;
    }
    return out;
  };
}

/**
 * SplitV as one Slice per piece through `slice` (the registered Slice kernel, so sliceInRows's
 * row copies where they apply): the wasm backend's own SplitV calls its slow slice directly.
 */
function splitBySlices(originalSplitV: tf.KernelFunc, slice: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype !== 'float32') return originalSplitV(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const along = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const pieces = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, along);
    const begin = x.shape.map(() => 0);
    return pieces.map((extent) => {
      const size = x.shape.map((whole, a) => (a === along ? extent : whole));
      const piece = slice({ ...args, attrs: { begin: [...begin], size } }) as tf.TensorInfo;
      begin[along]! += extent;
      return piece;
    });
  };
}

let installed = false;

/**
 * Replaces wasm kernels, once per process: Identity by one that shares its buffer; Sum over
 * leading axes, Transpose, Slice, SplitV and Reverse by faster ones for the cases above (the same values:
 * data movement is exact, the sum at least as precise); and registers the fused kernels.
 */
export function useFasterWasmKernels(): void {
  if (installed) return;
  const replacements = [
    ['Sum', sumOverLeadingAxes],
    ['Transpose', transposeInBlocks],
    ['Slice', sliceInRows],
    ['Reverse', reverseLastAxis],
  ] as const;
  for (const [kernelName, faster] of replacements) {
    const original = tf.getKernel(kernelName, 'wasm');
    if (!original) continue;
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: faster(original.kernelFunc) });
  }
  const splitV = tf.getKernel('SplitV', 'wasm');
  const slice = tf.getKernel('Slice', 'wasm');
  if (splitV && slice) {
    tf.unregisterKernel('SplitV', 'wasm');
    tf.registerKernel({ kernelName: 'SplitV', backendName: 'wasm', kernelFunc: splitBySlices(splitV.kernelFunc, slice.kernelFunc) });
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
  for (const kernelName of fusedKernelsToRegister(usesSimdKernels())) {
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: WASM_FUSED_KERNELS[kernelName]! });
  }
  installed = true;
}
