import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { wasmLoader } from './loaders.ts';

// The wasm loader installs the replacement kernels; these tests check they are invisible (same
// values as an independent computation and as the cpu backend, no leaks, safe disposal).

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

describe('Sum over leading axes on wasm', () => {
  beforeAll(async () => {
    const result = await wasmLoader.load({});
    if (!result.ok) throw new Error(result.why);
  });

  // x[i][j][k] = (i * 7 + j * 3 + k) % 5 - 2: small integers, so every sum is exact in float32.
  const shape: [number, number, number] = [4, 3, 5];
  const values = Array.from({ length: 60 }, (_, n) => {
    const [i, j, k] = [Math.floor(n / 15), Math.floor(n / 5) % 3, n % 5];
    return ((i * 7 + j * 3 + k) % 5) - 2;
  });
  const at = (i: number, j: number, k: number) => values[i * 15 + j * 5 + k]!;
  const range = (n: number) => [...Array(n).keys()];
  const overFirst = range(3).map((j) => range(5).map((k) => range(4).reduce((s, i) => s + at(i, j, k), 0)));

  it('sums the leading axis, the two leading axes, with and without keepDims, exactly', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor3d(values, shape);
    const before = tf.memory().numTensors;
    const overTwo = range(5).map((k) => range(4).reduce((s, i) => s + range(3).reduce((t, j) => t + at(i, j, k), 0), 0));
    expect(tf.tidy(() => tf.sum(x, 0).arraySync())).toEqual(overFirst);
    expect(tf.tidy(() => tf.sum(x, [1, 0]).arraySync())).toEqual(overTwo);
    expect(tf.tidy(() => tf.sum(x, [0, 1], true).arraySync())).toEqual([[overTwo]]);
    expect(tf.tidy(() => tf.sum(x, -3).shape)).toEqual([3, 5]);
    // The same tensor reduced again under another shape, and a large one (heap views stay valid).
    expect(tf.tidy(() => tf.sum(x.reshape([12, 5]), 0).arraySync())).toEqual(overTwo);
    // Rows not a multiple of the four summed per pass: 1, 2, 3 left over.
    for (const rows of [5, 6, 7, 1, 2, 3]) {
      const head = values.slice(0, rows * 5);
      const want = range(5).map((k) => range(rows).reduce((s, r) => s + head[r * 5 + k]!, 0));
      expect(tf.tidy(() => tf.sum(tf.tensor2d(head, [rows, 5]), 0).arraySync())).toEqual(want);
    }
    const big = tf.tidy(() => tf.sum(tf.fill([8192, 256], 0.5), 0).arraySync() as number[]);
    expect(big.length).toBe(256);
    expect(big.every((v) => v === 4096)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('leaves inner-axis, whole-tensor and integer sums to the original kernel', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor3d(values, shape);
    const overLast = range(4).map((i) => range(3).map((j) => range(5).reduce((s, k) => s + at(i, j, k), 0)));
    expect(tf.tidy(() => tf.sum(x, 2).arraySync())).toEqual(overLast);
    expect(tf.tidy(() => tf.sum(x).arraySync())).toBe(values.reduce((a, b) => a + b, 0));
    expect(tf.tidy(() => tf.sum(x.toInt(), 0).arraySync())).toEqual(overFirst);
    x.dispose();
  });

  it('gives a dense layer the same bias and kernel gradients as the cpu backend', async () => {
    const gradients = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const input = tf.tensor2d(values.slice(0, 12), [4, 3]);
        const kernel = tf.tensor2d([0.5, -1, 0.25, 2, -0.5, 1], [3, 2]);
        const bias = tf.tensor1d([0.1, -0.2]);
        const g = tf.grads((k: tf.Tensor, b: tf.Tensor) => tf.sum(tf.tanh(tf.add(tf.matMul(input, k as tf.Tensor2D), b))))([kernel, bias]);
        return g.map((t) => t.arraySync() as number[] | number[][]);
      });
    };
    const onCpu = (await gradients('cpu')).flat(2) as number[];
    const onWasm = (await gradients('wasm')).flat(2) as number[];
    expect(onWasm.length).toBe(8);
    onWasm.forEach((v, i) => expect(v).toBeCloseTo(onCpu[i]!, 5));
  });
});
