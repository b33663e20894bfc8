/* ------------------------------------------------------------------------------------------ *
 * A tiny WebAssembly assembler: the binary encoding of the handful of instructions the SIMD   *
 * kernels use, the loops and sums they are written with, and a module of such functions that *
 * imports its memory (no toolchain needed).                                                   *
 * ------------------------------------------------------------------------------------------ */

/** Unsigned LEB128, as the binary format writes sizes, indices and opcodes. */
export function unsignedLeb(value: number): number[] {
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
export const wasm = {
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

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

/** A function of the module: its name, parameter types, the types of its extra locals, its code. */
export interface WasmFunction {
  name: string;
  params: number[];
  locals: number[];
  code: number[][];
}

/** Horner's rule over the four lanes of local `x`: c[0] x^(n-1) + ... + c[n-1]. */
export function horner(x: number, coefficients: readonly number[]): number[][] {
  return [wasm.f32x4Const(coefficients[0]!), ...coefficients.slice(1).flatMap((c) => [wasm.get(x), wasm.f32x4Mul, wasm.f32x4Const(c), wasm.f32x4Add])];
}

/** A step in bytes: a constant, or an i32 local's value. */
export type Step = number | { local: number };
const stepCode = (step: Step): number[] => (typeof step === 'number' ? wasm.i32Const(step) : wasm.get(step.local));

/** `pointer += step` for an i32 local. */
export const advance = (pointer: number, step: Step): number[][] => [wasm.get(pointer), stepCode(step), wasm.i32Add, wasm.set(pointer)];

/** A loop over [x, end) by `step` bytes that runs `body` at least once unless x >= end already. */
export function loopUntil(x: number, end: number, step: Step, body: number[][]): number[][] {
  return [
    wasm.block, wasm.get(x), wasm.get(end), wasm.i32GeU, wasm.brIf(0),
    wasm.loop, ...body,
    wasm.get(x), stepCode(step), wasm.i32Add, wasm.tee(x), wasm.get(end), wasm.i32LtU, wasm.brIf(0),
    wasm.end, wasm.end,
  ];
}

/** The four lanes of local `v` added into one f32: (v0 + v1) + (v2 + v3). */
export const horizontalSum = (v: number): number[][] => [
  wasm.get(v), wasm.f32x4ExtractLane(0), wasm.get(v), wasm.f32x4ExtractLane(1), wasm.f32Add,
  wasm.get(v), wasm.f32x4ExtractLane(2), wasm.get(v), wasm.f32x4ExtractLane(3), wasm.f32Add, wasm.f32Add,
];

/** The address base + c (two i32 locals), for a load or a store. */
export const at = (base: number, c: number): number[][] => [wasm.get(base), wasm.get(c), wasm.i32Add];
export const ZERO = () => wasm.f32x4Const(0);

/** A module of `functions`, importing its memory as env.memory, exporting each function by name. */
export function assembleModule(functions: WasmFunction[]): Uint8Array {
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
