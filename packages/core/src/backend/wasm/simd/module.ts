import * as tf from '@tensorflow/tfjs';
import type { HeapBackend } from '../heap.ts';
import { assembleModule } from './assembler.ts';
import { dropoutFunction } from '../../kernels/dropout/simd.ts';
import { geluFunction } from '../../kernels/gelu/simd.ts';
import { layerNormFunction, layerNormGradFunction } from '../../kernels/layer_norm/simd.ts';
import { blockTransposeFunction, columnSumsFunction, transposeFunction } from './replacement-functions.ts';

/* --------------------------- the SIMD kernels, in WebAssembly ---------------------------- *
 * V8 runs the JavaScript loops one float64 at a time; WebAssembly SIMD does four float32 lanes *
 * per instruction. The kernels are a small module that imports the wasm backend's own memory, *
 * so they read and write the tensors where they lie. It is assembled here from the functions  *
 * of each kernel's simd.ts (../../kernels/) and replacement-functions.ts, written in the handful of instructions   *
 * of assembler.ts (no toolchain needed); each function is tested against the kernels' references *
 * or the cpu backend.                                                                          *
 * ---------------------------------------------------------------------------------------- */

/** The SIMD kernels' exports: byte addresses in the backend's heap, counts as ends. */
export interface SimdKernels {
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

/**
 * The module's bytes, as assembled from the functions. Its text form is committed beside this
 * file (module.wat) and kept equal by module-text.test.ts: review a change to a kernel there.
 */
export function simdModuleBytes(): Uint8Array {
  return assembleModule([geluFunction(), dropoutFunction(), layerNormFunction(), layerNormGradFunction(), transposeFunction(4), transposeFunction(16), columnSumsFunction(), blockTransposeFunction()]);
}

/** Whether the fused kernels run in WebAssembly SIMD on the active backend (else in JavaScript only). */
export function usesSimdKernels(): boolean {
  return simdKernels(tf.backend() as unknown as HeapBackend) !== undefined;
}

/**
 * The SIMD kernels bound to this backend's memory, or undefined where they cannot run (no
 * WebAssembly SIMD, or a backend build that does not expose its memory): the JavaScript loops then do everything.
 */
export function simdKernels(heap: HeapBackend): SimdKernels | undefined {
  const memory = heap.wasm?.asm?.memory;
  if (!memory || !webAssembly) return undefined;
  if (simdModule === undefined) {
    const bytes = simdModuleBytes();
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

/** Rows per block of float32 column sums: float32 rounding spans this many rows, float64 the rest. */
const SUM_BLOCK_ROWS = 32;

/**
 * Column totals in float64 from a SIMD kernel that ADDS a block's float32 column sums into
 * `accumulators` (views of the heap, each `totals[k]`'s length): for each block of
 * SUM_BLOCK_ROWS rows the accumulators start at zero and are then folded into `totals`.
 */
export function sumInBlocks(rows: number, accumulators: Float32Array[], totals: Float64Array[], addBlock: (row: number, count: number) => void): void {
  for (let row = 0; row < rows; row += SUM_BLOCK_ROWS) {
    for (const accumulator of accumulators) accumulator.fill(0);
    addBlock(row, Math.min(SUM_BLOCK_ROWS, rows - row));
    accumulators.forEach((accumulator, k) => {
      const total = totals[k]!;
      for (let c = 0; c < accumulator.length; c++) total[c]! += accumulator[c]!;
    });
  }
}
