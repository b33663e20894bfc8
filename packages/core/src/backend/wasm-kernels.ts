import * as tf from '@tensorflow/tfjs';

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
 * transpose is slow: ~20 ms for that shape, against ~1.5-3 ms for this loop over the same memory.
 * Every bias gradient and LayerNorm's gamma/beta gradients are such sums (13% of a token-mixing model's step
 * on wasm). Accumulates in float64, then rounds once. Anything else goes to the original kernel.
 */
function sumOverLeadingAxes(originalSum: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < rank && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32') return originalSum(args);
    const backend = args.backend as RefCountingBackend;
    const kept = x.shape.slice(axes.length);
    const rows = x.shape.slice(0, axes.length).reduce((a, b) => a * b, 1);
    const columns = kept.reduce((a, b) => a * b, 1);
    const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
    // Views on the wasm heap: taken after the allocation above, which may grow (and so detach) it.
    const input = backend.typedArrayFromHeap(x);
    const totals = new Float64Array(columns);
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
    backend.typedArrayFromHeap(out).set(totals);
    return out;
  };
}

let installed = false;

/**
 * Replaces two wasm kernels, once per process: Identity by one that shares its buffer, Sum over
 * leading axes by a single pass. Both give the same values (the sum more precisely).
 */
export function useFasterWasmKernels(): void {
  if (installed) return;
  const sum = tf.getKernel('Sum', 'wasm');
  if (sum) {
    tf.unregisterKernel('Sum', 'wasm');
    tf.registerKernel({ kernelName: 'Sum', backendName: 'wasm', kernelFunc: sumOverLeadingAxes(sum.kernelFunc) });
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
  installed = true;
}
