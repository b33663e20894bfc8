import * as tf from '@tensorflow/tfjs';
import { identitySharingData, reverseLastAxis, sliceInRows, splitBySlices, sumOverLeadingAxes, transposeInBlocks } from './kernel-replacements.ts';

/* ------------------------------------------------------------------------------------------ *
 * Faster kernels for TF.js's wasm backend: useFasterWasmKernels(), which the wasm loader     *
 * calls (the fused kernels are ../kernels/'s). The parts:                                    *
 *   kernel-replacements.ts  TF.js kernels replaced where 4.22's own does needless work       *
 *   simd/                   the WebAssembly SIMD module (the fused kernels' functions and    *
 *                           these), the tiny assembler, its instantiation over the backend's *
 *                           memory and its text (module.wat)                                 *
 *   heap.ts                 the part of the wasm backend object they use                     *
 * ------------------------------------------------------------------------------------------ */

export { asBatchedMatrixTranspose, type BatchedMatrixTranspose } from './kernel-replacements.ts';
export { usesSimdKernels } from './simd/module.ts';

let installed = false;

/**
 * Replaces wasm kernels, once per process: Identity by one that shares its buffer; Sum over
 * leading axes, Transpose, Slice, SplitV and Reverse by faster ones for the cases in
 * kernel-replacements.ts (the same values: data movement is exact, the sum at least as
 * precise). The fused kernels are registerWasmFusedKernels'.
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
  installed = true;
}

