import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadWasmBackend } from '../test-helpers.ts';
import { usesSimdKernels } from './module.ts';

describe('the SIMD kernels on wasm', () => {
  beforeAll(async () => {
    await loadWasmBackend();
    await tf.setBackend('wasm');
  });

  it('are instantiated here (Node 20 has WebAssembly SIMD), so the fused kernels leave JavaScript only the remainders', () => {
    expect(usesSimdKernels()).toBe(true);
  });
});
