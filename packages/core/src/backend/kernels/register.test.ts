import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import * as core from '../../index.ts';
import { FUSED_KERNELS } from './contract.ts';
import { registerFusedKernels } from './index.ts';

const registered = (backend: string) => Object.values(FUSED_KERNELS).filter((name) => tf.getKernel(name, backend) !== undefined);

describe('registerFusedKernels', () => {
  it('is the only way the fused kernels get registered: importing core registers none', () => {
    expect(core.registerFusedKernels).toBe(registerFusedKernels);
    expect(registered('cpu')).toEqual([]);
    expect(registered('wasm')).toEqual([]);
  });

  it('registers every fused kernel for cpu, and again is harmless', async () => {
    await tf.setBackend('cpu');
    expect(registerFusedKernels('cpu')).toEqual({ registered: true });
    expect(registerFusedKernels('cpu')).toEqual({ registered: true });
    expect(registered('cpu')).toEqual(Object.values(FUSED_KERNELS));
    const [y] = tf.engine().runKernel(FUSED_KERNELS.geluExact, { x: tf.tensor1d([0, 1]) }) as tf.Tensor[];
    expect(Array.from(y!.dataSync())).toEqual([0, Math.fround(0.8413447460685429)]);
  });

  it('the cpu loader, as backend selection uses it, registers them', async () => {
    const { cpuLoader } = await import('../loaders.ts');
    const result = await cpuLoader.load({});
    expect(result.ok && result.detail.summary).toContain('fused kernels');
  });
});
