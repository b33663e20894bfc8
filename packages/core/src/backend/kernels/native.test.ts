import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { FUSED_KERNELS } from './contract.ts';
import { NATIVE_FUSED_KERNELS_SWITCH, NATIVE_OPS_LIBRARY, registerNativeFusedKernels } from './native.ts';

/* Without a usable op library the native backend runs without fused kernels: no throw, a reason. */

describe('registerNativeFusedKernels without the op library', () => {
  it('registers nothing and says the library is not built', () => {
    expect(registerNativeFusedKernels(join(tmpdir(), 'no-such-dir', 'fused-kernels.node'))).toEqual({
      registered: false,
      why: 'not built: run `pnpm setup:tensorflow`',
    });
    for (const name of Object.values(FUSED_KERNELS)) expect(tf.getKernel(name, 'tensorflow')).toBeUndefined();
  });

  it('reports a file that is not a loadable library in one line, and registers nothing', () => {
    const broken = join(mkdtempSync(join(tmpdir(), 'tessera-fused-kernels-')), 'fused-kernels.node');
    writeFileSync(broken, 'not an ELF file');
    const result = registerNativeFusedKernels(broken);
    expect(result.registered).toBe(false);
    if (!result.registered) expect(result.why).toMatch(/^failed to load \([^\n]+\): run `pnpm setup:tensorflow`$/);
    for (const name of Object.values(FUSED_KERNELS)) expect(tf.getKernel(name, 'tensorflow')).toBeUndefined();
  });

  it('registers nothing when turned off with TESSERA_NATIVE_FUSED_KERNELS=0, built or not', () => {
    process.env[NATIVE_FUSED_KERNELS_SWITCH] = '0';
    try {
      expect(registerNativeFusedKernels(NATIVE_OPS_LIBRARY)).toEqual({ registered: false, why: 'turned off (TESSERA_NATIVE_FUSED_KERNELS=0)' });
      for (const name of Object.values(FUSED_KERNELS)) expect(tf.getKernel(name, 'tensorflow')).toBeUndefined();
    } finally {
      delete process.env[NATIVE_FUSED_KERNELS_SWITCH];
    }
  });
});
