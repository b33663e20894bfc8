import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  dropoutKeeps,
  erf,
  FUSED_KERNELS,
  hasFusedKernel,
  referenceDropout,
  referenceGeluExact,
  referenceLayerNorm,
  referenceLayerNormGrad,
} from './fused.ts';
import { wasmLoader } from './loaders.ts';
import { asBatchedMatrixTranspose, fusedKernelsToRegister, usesSimdKernels, WASM_FUSED_KERNELS } from './wasm-kernels.ts';

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

/* ------------------------------------ fused kernels ------------------------------------- */

/** Deterministic normal-ish values (mulberry32 + Box-Muller), so a failure reproduces. */
function randomValues(size: number, seed: number, scale = 1, offset = 0): Float32Array {
  let state = seed | 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return Float32Array.from({ length: size }, () => offset + scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

/**
 * Runs this file's wasm implementation of a fused kernel (registered or not: see
 * fusedKernelsToRegister), returns its outputs' values and disposes them.
 */
function runFused(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): Float32Array[] {
  const result = WASM_FUSED_KERNELS[name]!({ inputs, attrs, backend: tf.backend() }) as tf.TensorInfo | tf.TensorInfo[];
  const outputs = (Array.isArray(result) ? result : [result]).map((info) => tf.engine().makeTensorFromTensorInfo(info));
  const values = outputs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outputs);
  return values;
}

/** The largest |got - want| / (atol + rtol |want|): at most 1 passes. */
function worstError(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const error = Math.abs(got[i]! - want[i]!) / (atol + rtol * Math.abs(want[i]!));
    if (!(error <= worst)) worst = error; // NaN propagates as a failure
  }
  return worst;
}

describe('fused kernels on wasm (vs fused.ts reference implementations)', () => {
  beforeAll(async () => {
    const result = await wasmLoader.load({});
    if (!result.ok) throw new Error(result.why);
    await tf.setBackend('wasm');
  });

  it('registers for wasm exactly those that beat the composite path: all four with SIMD, GELU alone without', () => {
    expect(fusedKernelsToRegister(false)).toEqual([FUSED_KERNELS.geluExact]);
    for (const name of Object.values(FUSED_KERNELS)) expect(hasFusedKernel(name), name).toBe(fusedKernelsToRegister(usesSimdKernels()).includes(name));
  });

  it('run in WebAssembly SIMD here (Node 20 has it), JavaScript only for the remainders', () => {
    expect(usesSimdKernels()).toBe(true);
  });

  // Tolerance: float32 arithmetic (Eigen's float erf, ~2 ulps of Phi near 1), an error of Phi
  // that x Phi(x) scales by |x|: |error| <= 3e-7 max(1, |x|). Measured on a grid of 400,001
  // points over [-20, 20]: 2.6e-7 for y, 2.4e-7 for dydx (the composite wasm path: 1.2e-7).
  it('GeluExact: y and dydx within float32 accuracy, tails, a dense grid and odd sizes included', () => {
    const grid = Float32Array.from({ length: 40001 }, (_, i) => -20 + i * 1e-3);
    const tails = [-1e4, -40, -13.5, -12, -9, -8, -6, -5.66, -5, -4, -3, -2, -1, -0.5, -1e-3, -1e-30, 0, 1e-30, 1e-3, 0.5, 1, 2, 3, 4, 5, 5.66, 6, 8, 9, 12, 13.5, 40, 1e4];
    for (const values of [Float32Array.from(tails), grid, randomValues(1001, 1, 3), randomValues(128 * 64 * 3 + 5, 2, 1.5)]) {
      const x = tf.tensor1d(values);
      const before = tf.memory().numTensors;
      const [y, dydx] = runFused(FUSED_KERNELS.geluExact, { x });
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      const want = referenceGeluExact(values);
      const bound = Float32Array.from(values, (v) => 3e-7 * Math.max(1, Math.abs(v)));
      for (let i = 0; i < values.length; i++) {
        expect(Math.abs(y![i]! - want.y[i]!), `y at x=${values[i]}`).toBeLessThanOrEqual(bound[i]!);
        expect(Math.abs(dydx![i]! - want.dydx[i]!), `dydx at x=${values[i]}`).toBeLessThanOrEqual(bound[i]!);
      }
    }
  });

  it('GeluExact in JavaScript (the SIMD loop\'s remainder, the fallback without SIMD) within the same bound', () => {
    // One unit at a time: every value goes through the JavaScript loop.
    for (const v of [-1e4, -13.5, -8, -5.66, -4, -2.5, -1, -0.3, 0, 1e-3, 0.7, 1.5, 3, 4, 5.66, 9, 40, ...randomValues(40, 4, 3)]) {
      const x = tf.tensor1d([v]);
      const [y, dydx] = runFused(FUSED_KERNELS.geluExact, { x });
      x.dispose();
      const want = referenceGeluExact([Math.fround(v)]);
      const bound = 3e-7 * Math.max(1, Math.abs(v));
      expect(Math.abs(y![0]! - want.y[0]!), `y at ${v}`).toBeLessThanOrEqual(bound);
      expect(Math.abs(dydx![0]! - want.dydx[0]!), `dydx at ${v}`).toBeLessThanOrEqual(bound);
    }
  });

  it('GeluExact keeps the input shape and gives the gradient of x Phi(x) through one Multiply', () => {
    const x = tf.tensor3d(randomValues(2 * 3 * 5, 3), [2, 3, 5]);
    const [y, dydx] = (WASM_FUSED_KERNELS[FUSED_KERNELS.geluExact]!({ inputs: { x }, attrs: {}, backend: tf.backend() }) as tf.TensorInfo[]).map((info) =>
      tf.engine().makeTensorFromTensorInfo(info),
    );
    expect(y!.shape).toEqual([2, 3, 5]);
    expect(dydx!.shape).toEqual([2, 3, 5]);
    // Central differences of x Phi(x) in float64: an independent check of the derivative.
    const h = 1e-5;
    const gelu = (v: number) => 0.5 * v * (1 + erf(v * Math.SQRT1_2));
    const values = x.dataSync();
    const slope = dydx!.dataSync();
    values.forEach((v, i) => {
      const numeric = (gelu(v + h) - gelu(v - h)) / (2 * h);
      expect(slope[i]).toBeCloseTo(numeric, 6);
    });
    tf.dispose([x, y!, dydx!]);
  });

  it('Dropout: keeps exactly the units dropoutKeeps keeps, scales them bit for bit (-0 included), at rates 0, 0.2, 0.5, 0.9', () => {
    for (const rate of [0, 0.2, 0.5, 0.9]) {
      for (const [size, seed] of [[1, 5], [7, -1], [1001, 123456789], [1006, 3], [128 * 64 + 1, 2 ** 31 - 1], [4096, 0]] as const) {
        const values = randomValues(size, seed + 7);
        const x = tf.tensor1d(values);
        const [y] = runFused(FUSED_KERNELS.dropout, { x }, { rate, seed });
        x.dispose();
        const keeps = dropoutKeeps(size, rate, seed);
        const want = referenceDropout(values, rate, seed);
        let kept = 0;
        for (let i = 0; i < size; i++) {
          if (!Object.is(y![i], want[i])) expect.fail(`rate ${rate}, size ${size}, seed ${seed}: unit ${i} is ${y![i]}, want ${want[i]}`);
          if (keeps[i]) kept++;
          expect(y![i] !== 0).toBe(keeps[i] === 1);
        }
        if (size >= 4096) expect(Math.abs(kept / size - (1 - rate))).toBeLessThan(0.03);
      }
    }
  });

  it('Dropout applied twice with the same attrs drops the same units (its own gradient)', () => {
    const x = tf.ones([3, 5, 7]);
    const [first] = runFused(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 99 });
    const [second] = runFused(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 99 });
    const [other] = runFused(FUSED_KERNELS.dropout, { x }, { rate: 0.5, seed: 100 });
    x.dispose();
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    expect(new Set(first)).toEqual(new Set([0, 2]));
  });

  // Tolerance: float32 arithmetic (the SIMD kernels; the JavaScript loops, for rows whose length
  // is not a multiple of 4, are float64): every value within 4e-7 of the largest |value| of its
  // output, ~3 float32 ulps of it. Measured: <= 2e-7 for y, mean, rstd, dx, dgamma, dbeta.
  it('LayerNorm and LayerNormGrad match the reference: SIMD and JavaScript paths, several row blocks, an offset mean, two epsilons', () => {
    const largest = (values: ArrayLike<number>) => Array.from(values).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const close = (got: ArrayLike<number>, want: ArrayLike<number>) => expect(worstError(got, want, 4e-7 * largest(want) + 1e-30, 0)).toBeLessThanOrEqual(1);
    for (const [rows, columns, epsilon] of [[1, 1, 1e-3], [11, 37, 1e-6], [130, 64, 1e-6], [300, 256, 1e-3], [3, 4, 1e-6]] as const) {
      const xv = randomValues(rows * columns, rows + columns, 2, 3);
      const dyv = randomValues(rows * columns, 5 * rows);
      const gv = randomValues(columns, 11, 0.5, 1);
      const bv = randomValues(columns, 12);
      const [x, dy, gamma, beta] = [tf.tensor2d(xv, [rows, columns]), tf.tensor2d(dyv, [rows, columns]), tf.tensor1d(gv), tf.tensor1d(bv)];
      const before = tf.memory().numTensors;
      const [y, mean, rstd] = runFused(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon });
      const want = referenceLayerNorm(xv, gv, bv, epsilon);
      close(y!, want.y);
      close(mean!, want.mean);
      close(rstd!, want.rstd);
      const [meanT, rstdT] = [tf.tensor1d(mean!), tf.tensor1d(rstd!)];
      const [dx, dgamma, dbeta] = runFused(FUSED_KERNELS.layerNormGrad, { dy, x, mean: meanT, rstd: rstdT, gamma });
      const wantGrad = referenceLayerNormGrad(dyv, xv, mean!, rstd!, gv);
      close(dx!, wantGrad.dx);
      close(dgamma!, wantGrad.dgamma);
      close(dbeta!, wantGrad.dbeta);
      tf.dispose([meanT, rstdT]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, dy, gamma, beta]);
    }
  });

  it('LayerNorm normalises each row: mean 0 and variance 1 before gamma and beta', () => {
    const x = tf.tensor2d([[1, 2, 3, 4], [10, 10, 10, 14]]);
    const [gamma, beta] = [tf.ones([4]), tf.zeros([4])];
    const [y, mean, rstd] = runFused(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon: 0 });
    tf.dispose([x, gamma, beta]);
    expect(Array.from(mean!)).toEqual([2.5, 11]);
    // Row 1: variance 1.25; row 2: variance 3.
    expect(rstd![0]).toBeCloseTo(1 / Math.sqrt(1.25), 6);
    expect(rstd![1]).toBeCloseTo(1 / Math.sqrt(3), 6);
    const row2 = Array.from(y!.subarray(4));
    [-1, -1, -1, 3].forEach((d, i) => expect(row2[i]).toBeCloseTo(d / Math.sqrt(3), 6));
  });
});

describe('Transpose in SIMD blocks on wasm', () => {
  beforeAll(async () => {
    const result = await wasmLoader.load({});
    if (!result.ok) throw new Error(result.why);
  });

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
  beforeAll(async () => {
    const result = await wasmLoader.load({});
    if (!result.ok) throw new Error(result.why);
  });

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
