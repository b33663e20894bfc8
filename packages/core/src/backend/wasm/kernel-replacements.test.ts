import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { asBatchedMatrixTranspose } from './kernel-replacements.ts';
import { loadWasmBackend, randomValues } from './test-helpers.ts';

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
  beforeAll(loadWasmBackend);

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
  beforeAll(loadWasmBackend);

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

  it('sums rows a multiple of 4 long in SIMD blocks: exactly for integers, to float32 accuracy otherwise', async () => {
    await tf.setBackend('wasm');
    // 7 x 10 = 70 rows: two full blocks of 32 and a partial one.
    const integers = Array.from({ length: 7 * 10 * 12 }, (_, n) => ((n * 37) % 11) - 5);
    const want = range(12).map((k) => range(70).reduce((s, r) => s + integers[r * 12 + k]!, 0));
    expect(tf.tidy(() => tf.sum(tf.tensor3d(integers, [7, 10, 12]), [0, 1]).arraySync())).toEqual(want);
    const values = randomValues(300 * 64, 9, 1, 0.5);
    const exact = range(64).map((k) => range(300).reduce((s, r) => s + values[r * 64 + k]!, 0));
    const got = tf.tidy(() => tf.sum(tf.tensor2d(values, [300, 64]), 0).dataSync());
    // float32 rounding within 32-row blocks: far below 1e-5 of the sum of |values| (~300 x 0.9).
    got.forEach((v, k) => expect(Math.abs(v - exact[k]!)).toBeLessThan(1e-5 * 300));
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

describe('Transpose in SIMD blocks on wasm', () => {
  beforeAll(loadWasmBackend);

  it('sees which permutations are batches of matrix transposes', () => {
    expect(asBatchedMatrixTranspose([8192, 256], [1, 0])).toEqual({ batch: 1, rows: 8192, columns: 256, block: 1 });
    expect(asBatchedMatrixTranspose([128, 64, 256], [0, 2, 1])).toEqual({ batch: 128, rows: 64, columns: 256, block: 1 });
    // Adjacent axes merge: [2, 3, 4] -> [4, 2, 3] is the transpose of a [6, 4] matrix.
    expect(asBatchedMatrixTranspose([2, 3, 4], [2, 0, 1])).toEqual({ batch: 1, rows: 6, columns: 4, block: 1 });
    expect(asBatchedMatrixTranspose([2, 3, 4, 5], [0, 1, 3, 2])).toEqual({ batch: 6, rows: 4, columns: 5, block: 1 });
    // Image patches: blocks of 8 x 3 values moved whole.
    expect(asBatchedMatrixTranspose([128, 8, 8, 8, 8, 3], [0, 1, 3, 2, 4, 5])).toEqual({ batch: 1024, rows: 8, columns: 8, block: 24 });
    expect(asBatchedMatrixTranspose([3, 5, 8], [1, 0, 2])).toEqual({ batch: 1, rows: 3, columns: 5, block: 8 });
    // A reversal, the identity: not matrix transposes.
    expect(asBatchedMatrixTranspose([2, 3, 4], [2, 1, 0])).toBeUndefined();
    expect(asBatchedMatrixTranspose([2, 3], [0, 1])).toBeUndefined();
  });

  it('moves every value exactly where the cpu backend does, in SIMD blocks or through the original kernel', async () => {
    const cases: [number[], number[], 'float32' | 'int32'][] = [
      [[8, 12], [1, 0], 'float32'],
      [[4, 4], [1, 0], 'float32'],
      [[3, 8, 4], [0, 2, 1], 'float32'],
      [[2, 4, 8, 4], [0, 1, 3, 2], 'float32'],
      [[2, 4, 4], [2, 0, 1], 'float32'],
      [[256, 36], [1, 0], 'float32'],
      [[48, 20], [1, 0], 'float32'],
      [[2, 32, 8], [0, 2, 1], 'float32'],
      // Blocks of values moved whole (image patches), any rows and columns.
      [[2, 3, 5, 4, 4, 3], [0, 1, 3, 2, 4, 5], 'float32'],
      [[3, 5, 8], [1, 0, 2], 'float32'],
      // The original kernel: sides not a multiple of 4, int32, blocks not a multiple of 4, a reversal.
      [[6, 5], [1, 0], 'float32'],
      [[8, 12], [1, 0], 'int32'],
      [[2, 4, 4, 4, 2, 3], [0, 1, 3, 2, 4, 5], 'float32'],
      [[4, 8, 4], [2, 1, 0], 'float32'],
    ];
    const transposed = async (backend: string) => {
      await tf.setBackend(backend);
      return cases.map(([shape, perm, dtype]) =>
        tf.tidy(() => {
          const size = shape.reduce((a, b) => a * b, 1);
          const x = tf.tensor(Array.from({ length: size }, (_, i) => (dtype === 'int32' ? i : i + 0.5)), shape, dtype);
          const y = tf.transpose(x, perm);
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        }),
      );
    };
    const want = await transposed('cpu');
    const before = (await tf.setBackend('wasm'), tf.memory().numTensors);
    const got = await transposed('wasm');
    expect(tf.memory().numTensors).toBe(before);
    got.forEach((result, i) => expect(result, `case ${cases[i]![0]} perm ${cases[i]![1]}`).toEqual(want[i]));
  });
});

describe('Slice in rows and Reverse along the last axis on wasm', () => {
  beforeAll(loadWasmBackend);

  /** Runs `op` on arange-like tensors of each shape on the cpu and the wasm backend. */
  async function onBothBackends(shapes: number[][], op: (x: tf.Tensor, i: number) => tf.Tensor, dtype: 'float32' | 'int32' = 'float32') {
    const results = async (backend: string) => {
      await tf.setBackend(backend);
      const before = tf.memory().numTensors;
      const values = shapes.map((shape, i) =>
        tf.tidy(() => {
          const size = shape.reduce((a, b) => a * b, 1);
          const y = op(tf.tensor(Array.from({ length: size }, (_, n) => (dtype === 'int32' ? n : n + 0.25)), shape, dtype), i);
          return { shape: y.shape, values: Array.from(y.dataSync()) };
        }),
      );
      expect(tf.memory().numTensors).toBe(before);
      return values;
    };
    return { want: await results('cpu'), got: await results('wasm') };
  }

  it('slices exactly as the cpu backend: row copies, and the original kernel elsewhere', async () => {
    const cases: [number[], number[], number[]][] = [
      [[4, 6, 32], [0, 0, 16], [-1, -1, 16]], // a gating unit's second half: row copies
      [[4, 6, 32], [0, 0, 0], [4, 6, 20]],
      [[3, 4, 2, 17], [0, 0, 1, 0], [-1, -1, 1, -1]], // one of two planes
      [[3, 4, 2, 19], [0, 0, 1, 2], [-1, -1, 1, 17]], // one plane, cut too
      [[3, 4, 3, 2, 19], [0, 0, 2, 1, 1], [-1, -1, 1, 1, 17]],
      [[5, 40], [0, 3], [5, 33]],
      [[6, 40], [2, 0], [3, 40]], // contiguous: the original kernel
      [[5, 40], [1, 3], [3, 20]], // two axes cut, the first to more than one index: the original kernel
      [[3, 4, 2, 19], [0, 0, 0, 2], [-1, -1, 2, 17]],
      [[4, 6, 8], [0, 0, 2], [4, 6, 4]], // rows too short: the original kernel
    ];
    const { want, got } = await onBothBackends(cases.map((c) => c[0]), (x, i) => tf.slice(x, cases[i]![1], cases[i]![2]));
    got.forEach((result, i) => expect(result, `case ${i}`).toEqual(want[i]));
    const ints = await onBothBackends([[4, 6, 32]], (x) => tf.slice(x, [0, 0, 16], [-1, -1, 16]), 'int32');
    expect(ints.got).toEqual(ints.want);
  });

  it('splits exactly as the cpu backend (one slice per piece)', async () => {
    const cases: [number[], number[] | number, number][] = [
      [[4, 6, 32], [17, 15], 2],
      [[4, 6, 32], 2, -1],
      [[4, 6, 32], [1, 5], 1],
      [[6, 40], [2, -1, 1], 0],
    ];
    const { want, got } = await onBothBackends(cases.map((c) => c[0]), (x, i) => tf.concat(tf.split(x, cases[i]![1], cases[i]![2]).map((piece) => piece.reshape([-1]))));
    got.forEach((result, i) => expect(result, `case ${i}`).toEqual(want[i]));
    const shapes = await onBothBackends([[4, 6, 32]], (x) => tf.stack(tf.split(x, [17, 15], 2).map((piece) => tf.tensor1d(piece.shape))));
    expect(shapes.got[0]!.values).toEqual([4, 6, 17, 4, 6, 15]);
  });

  it('reverses exactly as the cpu backend, along the last axis and (through the original kernel) others', async () => {
    const cases: [number[], number[]][] = [
      [[4, 6, 127], [2]],
      [[3, 1], [-1]],
      [[5, 8], [1]],
      [[4, 6, 7], [1]],
      [[4, 6, 7], [0, 2]],
    ];
    const { want, got } = await onBothBackends(cases.map((c) => c[0]), (x, i) => tf.reverse(x, cases[i]![1]));
    got.forEach((result, i) => expect(result, `case ${i}`).toEqual(want[i]));
  });
});
