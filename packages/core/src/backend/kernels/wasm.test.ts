import { beforeAll, describe, expect, it } from 'vitest';
import { FUSED_KERNELS, hasFusedKernel } from './index.ts';
import { useWasmBackend } from './testing.ts';
import { fusedKernelsToRegister } from './wasm.ts';
import { usesSimdKernels } from '../wasm/simd/module.ts';

beforeAll(useWasmBackend);

describe('fused kernels on wasm', () => {
  it('registers for wasm exactly those that beat the composite path: all four with SIMD, GELU alone without', () => {
    expect(fusedKernelsToRegister(false)).toEqual([FUSED_KERNELS.geluExact]);
    for (const name of Object.values(FUSED_KERNELS)) expect(hasFusedKernel(name), name).toBe(fusedKernelsToRegister(usesSimdKernels()).includes(name));
  });
});
