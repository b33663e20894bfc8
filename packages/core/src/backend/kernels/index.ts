import { registerCpuFusedKernels } from './cpu.ts';
import { registerFusedGradients } from './gradients.ts';
import { registerNativeFusedKernels, type NativeFusedKernels } from './native.ts';
import { registerWasmFusedKernels } from './wasm.ts';

/* ------------------------------------------------------------------------------------------ *
 * Tessera's fused kernels, one folder per kernel:                                            *
 *   contract.ts          the kernel names and exactly what each computes                     *
 *   <kernel>/reference.ts  the float64 reference (the cpu kernel, the golden for the others)  *
 *   <kernel>/wasm.ts     the wasm heap kernel (JavaScript remainder and fallback)            *
 *   <kernel>/simd.ts     its WebAssembly SIMD function (assembled by ../wasm/simd/module.ts, *
 *                        reviewable as ../wasm/simd/module.wat)                              *
 *   <kernel>/native.cc   its TensorFlow custom op(s), for the native backend; with           *
 *                        native-ops.h (shared helpers) and native-addon.cc (the Node addon   *
 *                        entry) compiled into one library, build/fused-kernels.node, by      *
 *                        `pnpm setup:tensorflow`                                             *
 *   cpu.ts, wasm.ts, native.ts  each backend's registration                                  *
 *   <kernel>/*.test.ts   its reference, its wasm and its native kernel, each tested; the    *
 *                        helpers they share are testing.ts'                                  *
 * gelu: TesseraGeluExact; layer_norm: TesseraLayerNorm(+Grad); dropout: TesseraDropout;     *
 * batch_norm: TesseraBatchNorm(+Grad), bias_add: TesseraBiasAdd(+Grad) (no wasm kernels; on   *
 * native TensorFlow's own FusedBatchNormV3 and BiasAdd ops; their gradients: gradients.ts).   *
 * ------------------------------------------------------------------------------------------ */

export { FUSED_KERNELS, hasFusedKernel } from './contract.ts';
export { referenceBatchNorm, referenceBatchNormGrad } from './batch_norm/reference.ts';
export { referenceBiasAdd, referenceBiasAddGrad } from './bias_add/reference.ts';
export { dropoutKeeps, DROPOUT_WEYL_STEP, dropoutKey, dropoutScale, dropoutPairBits, dropoutThreshold, referenceDropout } from './dropout/reference.ts';
export { erf, referenceGeluExact } from './gelu/reference.ts';
export { layerNormInto, referenceLayerNorm, referenceLayerNormGrad } from './layer_norm/reference.ts';
export type { NativeFusedKernels } from './native.ts';

/**
 * Registers Tessera's fused kernels for one TF.js backend: `cpu` gets the references, `wasm` its
 * heap/SIMD kernels, `tensorflow` the TensorFlow custom ops (loaded from the compiled library;
 * the result says why not when it is missing). An explicit call, made by the backend loaders
 * when selectBackend picks a backend, never a side effect of importing a module; calling it
 * again is harmless. Code that sets a backend itself (`tf.setBackend('cpu')` in a test) calls it
 * too, or runs without fused kernels: every primitive then falls back to its composite ops
 * (`hasFusedKernel`).
 */
export function registerFusedKernels(backend: 'cpu' | 'wasm' | 'tensorflow'): NativeFusedKernels {
  registerFusedGradients();
  switch (backend) {
    case 'cpu':
      registerCpuFusedKernels();
      return { registered: true };
    case 'wasm':
      registerWasmFusedKernels();
      return { registered: true };
    case 'tensorflow':
      return registerNativeFusedKernels();
  }
}
