import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import * as core from '../../index.ts';
import { FUSED_KERNELS, hasFusedKernel } from './contract.ts';
import { referenceDropout, referenceLayerNorm } from './index.ts';
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

  it('the cpu backend then has every fused kernel, and they agree with the references', () => {
    for (const name of Object.values(FUSED_KERNELS)) expect(hasFusedKernel(name)).toBe(true);
    const x = tf.tensor2d([1, -2, 0.5, 3, 2, 2, -1, 0], [2, 4]);
    const gamma = tf.tensor1d([1, 0.5, 2, 1]);
    const beta = tf.tensor1d([0, 1, 0, -1]);
    const [y, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: 1e-6 }) as tf.Tensor[];
    const expected = referenceLayerNorm(x.dataSync(), gamma.dataSync(), beta.dataSync(), 1e-6);
    expect(y!.dataSync()).toEqual(expected.y);
    expect(mean!.shape).toEqual([2]);
    expect(rstd!.dataSync()).toEqual(expected.rstd);
    const dropped = tf.engine().runKernel(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 7 }) as tf.Tensor;
    expect(dropped.dataSync()).toEqual(referenceDropout(x.dataSync(), 0.5, 7));
    tf.dispose([x, gamma, beta, y!, mean!, rstd!, dropped]);
  });
});
