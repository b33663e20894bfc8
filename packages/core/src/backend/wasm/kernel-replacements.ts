import * as tf from '@tensorflow/tfjs';
import type { HeapBackend, RefCountingBackend } from './heap.ts';
import { simdKernels, sumInBlocks } from './simd/module.ts';

/* ------------------------------------------------------------------------------------------ *
 * Kernel replacements for the wasm backend where TF.js 4.22's own kernel does needless work.  *
 * ------------------------------------------------------------------------------------------ */

/**
 * Identity without a copy. The engine runs Identity on every tensor it saves for the backward
 * pass (Engine.clone), and on wasm that kernel copies the whole buffer: a training step of the
 * reference models makes ~200-300 such copies (5-6% of the step) and holds each saved tensor
 * twice. The backend already reference-counts its buffers (its Reshape shares data the same way)
 * and no wasm kernel writes into an input, so sharing the buffer is safe.
 */
export function identitySharingData({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  (backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * Sum over leading axes ([8192, 256] -> [256]) as one sequential pass. The wasm Sum kernel
 * reduces innermost axes only, so for leading ones it first transposes the whole input, and its
 * transpose is slow: ~20 ms for that shape, against ~1.5-3 ms for a JavaScript loop over the same
 * memory and ~0.5-1 for the SIMD one (rows a multiple of 4 long). Every bias gradient is such a
 * sum. Float32 within blocks of SUM_BLOCK_ROWS rows (sumInBlocks), float64 across them (the
 * JavaScript loop: float64 throughout), then rounded once. Anything else goes to the original kernel.
 */
export function sumOverLeadingAxes(originalSum: tf.KernelFunc): tf.KernelFunc {
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
export function transposeInBlocks(originalTranspose: tf.KernelFunc): tf.KernelFunc {
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
export function sliceInRows(originalSlice: tf.KernelFunc): tf.KernelFunc {
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
export function reverseLastAxis(originalReverse: tf.KernelFunc): tf.KernelFunc {
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
export function splitBySlices(originalSplitV: tf.KernelFunc, slice: tf.KernelFunc): tf.KernelFunc {
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
