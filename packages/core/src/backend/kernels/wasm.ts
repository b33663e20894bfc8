import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS } from './contract.ts';
import { dropout } from './dropout/wasm.ts';
import { geluExact } from './gelu/wasm.ts';
import { layerNorm, layerNormGrad } from './layer_norm/wasm.ts';
import { usesSimdKernels } from '../wasm/simd/module.ts';

/* ----------------------------------- fused kernels -------------------------------------- *
 * The fused kernels (contract.ts states the exact math) on the wasm heap: one pass where the   *
 * composite path runs a chain of element-wise kernels, each reading and writing the whole      *
 * tensor. The bulk runs in each kernel's SIMD functions (<kernel>/simd.ts, float32), the      *
 * JavaScript loops of <kernel>/wasm.ts (float64, rounded once) the remainder and the fallback. *
 * ---------------------------------------------------------------------------------------- */

/**
 * The fused kernels registered for wasm: those measured faster than the composite path they
 * replace, forward and backward, at [128, 64, 256] and [128, 256, 64]. With SIMD all four
 * (GELU 65 -> 10 ms, dropout 16 -> 10, LayerNorm 22 -> 7); without it only GELU, whose
 * JavaScript loop still halves its composite path, while dropout's ties and LayerNorm's loses.
 */
export function fusedKernelsToRegister(simd: boolean): string[] {
  // Batch norm and bias add have no wasm kernels: their primitives use composite ops there.
  return simd ? Object.keys(WASM_FUSED_KERNELS) : [FUSED_KERNELS.geluExact];
}

/** The fused kernels this file implements for wasm, registered or not (see fusedKernelsToRegister). */
export const WASM_FUSED_KERNELS: Record<string, tf.KernelFunc> = {
  [FUSED_KERNELS.geluExact]: geluExact as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNorm]: layerNorm as unknown as tf.KernelFunc,
  [FUSED_KERNELS.layerNormGrad]: layerNormGrad as unknown as tf.KernelFunc,
  [FUSED_KERNELS.dropout]: dropout as unknown as tf.KernelFunc,
};

/** Registers the wasm fused kernels (those fusedKernelsToRegister picks); called by registerFusedKernels('wasm'). */
export function registerWasmFusedKernels(): void {
  for (const kernelName of fusedKernelsToRegister(usesSimdKernels())) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: WASM_FUSED_KERNELS[kernelName]! });
  }
}
