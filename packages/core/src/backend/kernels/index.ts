import { registerCpuFusedKernels } from './fused.ts';
import { registerNativeFusedKernels, type NativeFusedKernels } from './native-kernels.ts';
import { registerWasmFusedKernels } from './wasm/index.ts';

/**
 * Registers Tessera's fused kernels (fused.ts: the contract and the references) for one TF.js
 * backend: `cpu` gets the references, `wasm` its heap/SIMD kernels (wasm/), `tensorflow` the
 * TensorFlow custom ops of native-ops/ (loaded from the compiled library; the result says why
 * not when it is missing). An explicit call, made by the backend loaders when selectBackend picks
 * a backend, never a side effect of importing a module; calling it again is harmless. Code that
 * sets a backend itself (`tf.setBackend('cpu')` in a test) calls it too, or runs without fused
 * kernels: every primitive then falls back to its composite ops (`hasFusedKernel`).
 */
export function registerFusedKernels(backend: 'cpu' | 'wasm' | 'tensorflow'): NativeFusedKernels {
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
