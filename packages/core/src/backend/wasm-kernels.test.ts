import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { wasmLoader } from './loaders.ts';

// The wasm loader installs the sharing Identity kernel; these tests check it is both cheaper
// (no new buffer) and invisible (same values, same gradients, no leaks, safe disposal).

/** A function whose gradient makes the engine save (clone) intermediate tensors. */
const f = (x: tf.Tensor) => tf.sum(tf.mul(tf.exp(tf.mul(x, 0.5)), tf.tanh(x)));
const input = [[-1.5, -0.25, 0], [0.5, 1, 2.5]];

async function gradientOn(backend: string): Promise<number[][]> {
  await tf.setBackend(backend);
  return tf.tidy(() => tf.grad(f)(tf.tensor2d(input)).arraySync() as number[][]);
}

describe('sharing Identity on wasm', () => {
  beforeAll(async () => {
    const result = await wasmLoader.load({});
    if (!result.ok) throw new Error(result.why);
  });

  it('is installed by the wasm loader and shares the buffer instead of copying it', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1, 2, 3]);
    const buffers = tf.memory().numDataBuffers;
    const y = tf.engine().runKernel('Identity', { x }) as tf.Tensor;
    expect(y.dataId).toBe(x.dataId);
    expect(tf.memory().numDataBuffers).toBe(buffers);
    x.dispose();
    expect(await y.data()).toEqual(new Float32Array([1, 2, 3])); // still alive: reference-counted
    y.dispose();
  });

  it('leaves gradients exactly as the cpu backend computes them, without leaking tensors', async () => {
    const expected = await gradientOn('cpu');
    const tensors = (await tf.setBackend('wasm'), tf.memory().numTensors);
    const actual = await gradientOn('wasm');
    expect(tf.memory().numTensors).toBe(tensors);
    // d/dx [exp(x/2) tanh(x)] = exp(x/2) (tanh(x)/2 + 1 - tanh(x)^2), checked independently:
    const analytic = input.map((row) => row.map((v) => Math.exp(v / 2) * (Math.tanh(v) / 2 + 1 - Math.tanh(v) ** 2)));
    actual.flat().forEach((g, i) => {
      expect(g).toBeCloseTo(expected.flat()[i]!, 5);
      expect(g).toBeCloseTo(analytic.flat()[i]!, 5);
    });
  });

  it('still copies string tensors through the original kernel', async () => {
    await tf.setBackend('wasm');
    const s = tf.tensor1d(['a', 'bc'], 'string');
    const t = tf.engine().runKernel('Identity', { x: s }) as tf.Tensor;
    expect(await t.data()).toEqual(['a', 'bc']);
    tf.dispose([s, t]);
  });
});
