import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import {
  FUSED_KERNELS,
  dropoutKeeps,
  hasFusedKernel,
  referenceBatchNorm,
  referenceBatchNormGrad,
  referenceBiasAddGrad,
  referenceDropout,
  referenceGeluExact,
  referenceLayerNorm,
  referenceLayerNormGrad,
} from './fused.ts';
import { nativeLoader } from './loaders.ts';
import { NATIVE_OPS_LIBRARY } from './native-kernels.ts';

/*
 * The native backend's fused kernels (TensorFlow custom ops from native-ops/tessera_ops.cc)
 * against fused.ts's float64 references, run through tf.engine().runKernel as the primitives
 * call them. Skipped where the native backend is not set up (pnpm setup:tensorflow); where it is,
 * the op library must be there too, since the same script builds both.
 */

/** Why the native tests are skipped here; undefined where the native backend loaded. */
let missing: string | undefined = 'the native backend was not loaded';

beforeAll(async () => {
  const loaded = await nativeLoader('tensorflow').load({});
  if (!loaded.ok) {
    missing = `the native backend is not set up here (pnpm setup:tensorflow): ${loaded.why}`;
    return;
  }
  missing = undefined;
  if (!hasFusedKernel(FUSED_KERNELS.geluExact)) {
    throw new Error(`the native backend loaded without its fused kernels (${loaded.detail.summary}); expected ${NATIVE_OPS_LIBRARY}`);
  }
});

afterAll(async () => {
  await tf.setBackend('cpu');
});

function requireNative(context: TestContext): void {
  if (missing !== undefined) context.skip(missing);
}

/** mulberry32: a small seeded generator, so every run sees the same "random" data. */
function uniforms(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}

/** Uniform in [low, high). */
function between(count: number, low: number, high: number, seed: number): Float32Array {
  return uniforms(count, seed).map((u) => low + (high - low) * u);
}

/** Runs a fused kernel on float32 arrays and returns its outputs' values; frees every tensor it made. */
function runFused(name: string, inputs: Record<string, { values: Float32Array; shape: number[] }>, attrs: tf.NamedAttrMap = {}): Float32Array[] {
  return tf.tidy(() => {
    const tensors = Object.fromEntries(Object.entries(inputs).map(([key, { values, shape }]) => [key, tf.tensor(values, shape, 'float32')]));
    const out = tf.engine().runKernel(name, tensors, attrs) as tf.Tensor | tf.Tensor[];
    return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync() as Float32Array);
  });
}

/** The largest |actual - expected| / (floor + scale(i) |expected|-ish), to read failures by. */
function expectClose(actual: Float32Array, expected: ArrayLike<number>, tolerance: (i: number) => number, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = { i: -1, excess: 0 };
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!);
    const excess = error / tolerance(i);
    if (!(excess <= 1) && (worst.i < 0 || excess > worst.excess || Number.isNaN(excess))) worst = { i, excess };
  }
  if (worst.i >= 0) {
    const i = worst.i;
    expect.fail(`${what}: [${i}] is ${actual[i]}, expected ${expected[i]} within ${tolerance(i)}`);
  }
}

describe('native fused kernels (TensorFlow custom ops)', () => {
  it('TesseraGeluExact gives Keras exact gelu and its derivative, to float32 precision, at any size', (context) => {
    requireNative(context);
    const special = Float32Array.from([0, -0, 1e-8, -1e-8, 1, -1, 3, -3, 5.5, -5.5, 9, -9, 40, -40, 1e4, -1e4, 3e38, -3e38]);
    // 262147 values: many thread shards and a scalar tail after the last whole packet.
    for (const x of [special, between(1, -4, 4, 1), between(37, -6, 6, 2), between(262147, -12, 12, 3)]) {
      const [y, dydx] = runFused(FUSED_KERNELS.geluExact, { x: { values: x, shape: [x.length] } });
      const reference = referenceGeluExact(x);
      // erf is Eigen's rational approximation (3 ulp), as in TF's own Erf kernel.
      expectClose(y!, reference.y, (i) => 2e-7 + 3e-7 * Math.abs(x[i]!), `y at size ${x.length}`);
      expectClose(dydx!, reference.dydx, () => 3e-7, `dydx at size ${x.length}`);
    }
  });

  it('TesseraGeluExact keeps a shape of any rank', (context) => {
    requireNative(context);
    const [y, dydx] = tf.tidy(() => (tf.engine().runKernel(FUSED_KERNELS.geluExact, { x: tf.ones([2, 3, 5]) }) as tf.Tensor[]).map((t) => t.shape));
    expect([y, dydx]).toEqual([[2, 3, 5], [2, 3, 5]]);
  });

  it('TesseraLayerNorm matches the reference: y, per-row mean and rstd', (context) => {
    requireNative(context);
    const cases = [
      { rows: 1, columns: 1, offset: 0, epsilon: 1e-6 },
      { rows: 3, columns: 7, offset: 0, epsilon: 1e-3 },
      { rows: 37, columns: 256, offset: 0, epsilon: 1e-6 },
      { rows: 1031, columns: 64, offset: 0, epsilon: 1e-6 },
      // A mean far from 0 next to a std of ~0.6: a one-pass E[x^2] - m^2 would lose most digits.
      { rows: 17, columns: 33, offset: 300, epsilon: 1e-6 },
    ];
    for (const [k, { rows, columns, offset, epsilon }] of cases.entries()) {
      const x = between(rows * columns, offset - 1, offset + 1, 10 + k);
      const gamma = between(columns, 0.5, 1.5, 20 + k);
      const beta = between(columns, -1, 1, 30 + k);
      const [y, mean, rstd] = runFused(
        FUSED_KERNELS.layerNorm,
        { x: { values: x, shape: [rows, columns] }, gamma: { values: gamma, shape: [columns] }, beta: { values: beta, shape: [columns] } },
        { epsilon },
      );
      const reference = referenceLayerNorm(x, gamma, beta, epsilon);
      const what = `[${rows}, ${columns}] + ${offset}`;
      // The mean is rounded to float32 (half an ulp of |offset|), and (x - mean) inherits that.
      const meanUlp = offset === 0 ? 0 : 2 ** (Math.floor(Math.log2(offset)) - 23);
      expectClose(mean!, reference.mean, () => 1e-6 + meanUlp, `mean of ${what}`);
      expectClose(rstd!, reference.rstd, (i) => 2e-6 * reference.rstd[i]!, `rstd of ${what}`);
      expectClose(y!, reference.y, (i) => 4e-6 + meanUlp * reference.rstd[Math.floor(i / columns)]! * 1.5, `y of ${what}`);
    }
  });

  it('TesseraLayerNormGrad matches the reference: dx, and dgamma and dbeta summed over rows', (context) => {
    requireNative(context);
    for (const [k, [rows, columns]] of [[1, 5], [3, 7], [129, 256], [2053, 64]].entries()) {
      const x = between(rows! * columns!, -2, 2, 40 + k);
      const dy = between(rows! * columns!, -1, 1, 50 + k);
      const gamma = between(columns!, 0.5, 1.5, 60 + k);
      const { mean, rstd } = referenceLayerNorm(x, gamma, new Float32Array(columns!), 1e-6);
      const [dx, dgamma, dbeta] = runFused(FUSED_KERNELS.layerNormGrad, {
        dy: { values: dy, shape: [rows!, columns!] },
        x: { values: x, shape: [rows!, columns!] },
        mean: { values: mean, shape: [rows!] },
        rstd: { values: rstd, shape: [rows!] },
        gamma: { values: gamma, shape: [columns!] },
      });
      const reference = referenceLayerNormGrad(dy, x, mean, rstd, gamma);
      const what = `[${rows}, ${columns}]`;
      expectClose(dx!, reference.dx, () => 1e-5, `dx of ${what}`);
      // Sums over rows: float32 rounding grows with the number of terms (|dy xhat| <= ~2 each).
      expectClose(dgamma!, reference.dgamma, () => 1e-6 * rows! + 1e-6, `dgamma of ${what}`);
      expectClose(dbeta!, reference.dbeta, () => 1e-6 * rows! + 1e-6, `dbeta of ${what}`);
    }
  });

  it('TesseraBatchNorm and TesseraBatchNormGrad (TF FusedBatchNormV3 and its gradient) match the reference', (context) => {
    requireNative(context);
    for (const [k, [rows, columns]] of [[2, 3], [37, 16], [4096, 64]].entries()) {
      const x = between(rows! * columns!, 1, 5, 70 + k);
      const dy = between(rows! * columns!, -1, 1, 80 + k);
      const gamma = between(columns!, 0.5, 1.5, 90 + k);
      const beta = between(columns!, -1, 1, 100 + k);
      const shape = [1, 1, rows!, columns!];
      const [y, mean, variance] = runFused(
        FUSED_KERNELS.batchNorm,
        { x: { values: x, shape }, gamma: { values: gamma, shape: [columns!] }, beta: { values: beta, shape: [columns!] } },
        { epsilon: 1e-3 },
      );
      const reference = referenceBatchNorm(x, gamma, beta, 1e-3);
      const what = `[${rows}, ${columns}]`;
      expectClose(mean!, reference.mean, () => 1e-5, `mean of ${what}`);
      // The biased variance (what the moving variance moves towards), not TF's Bessel-corrected batch_variance.
      expectClose(variance!, reference.variance, (i) => 1e-5 * (1 + reference.variance[i]!), `variance of ${what}`);
      expectClose(y!, reference.y, () => 2e-5, `y of ${what}`);
      const [dx, dgamma, dbeta] = runFused(
        FUSED_KERNELS.batchNormGrad,
        {
          dy: { values: dy, shape },
          x: { values: x, shape },
          mean: { values: reference.mean, shape: [columns!] },
          variance: { values: reference.variance, shape: [columns!] },
          gamma: { values: gamma, shape: [columns!] },
        },
        { epsilon: 1e-3 },
      );
      const grads = referenceBatchNormGrad(dy, x, reference.mean, reference.variance, gamma, 1e-3);
      expectClose(dx!, grads.dx, () => 2e-5, `dx of ${what}`);
      expectClose(dgamma!, grads.dgamma, () => 1e-6 * rows! + 1e-6, `dgamma of ${what}`);
      expectClose(dbeta!, grads.dbeta, () => 1e-6 * rows! + 1e-6, `dbeta of ${what}`);
    }
  });

  it('TesseraBiasAdd adds along the last axis and TesseraBiasAddGrad sums the rest (TF BiasAdd, BiasAddGrad)', (context) => {
    requireNative(context);
    const x = between(3 * 4 * 5, -2, 2, 110);
    const bias = between(5, -1, 1, 111);
    const [y] = runFused(FUSED_KERNELS.biasAdd, { x: { values: x, shape: [3, 4, 5] }, bias: { values: bias, shape: [5] } });
    expect(Array.from(y!)).toEqual(Array.from(x, (v, i) => Math.fround(v + bias[i % 5]!)));
    const [dbias] = runFused(FUSED_KERNELS.biasAddGrad, { dy: { values: x, shape: [3, 4, 5] } });
    expectClose(dbias!, referenceBiasAddGrad(x, 5), () => 1e-5, 'dbias');
  });

  it('TesseraDropout is bit-identical to the reference (mask, scale, -0 and NaN), for any size, rate and seed', (context) => {
    requireNative(context);
    for (const size of [1, 2, 3, 1001, 262145]) {
      const x = between(size, -3, 3, size);
      x[0] = Number.NaN;
      for (const rate of [0, 0.1, 0.2, 0.5, 0.9]) {
        for (const seed of [0, 1, -1, 12345, 2147483647, -2147483648]) {
          const [y] = runFused(FUSED_KERNELS.dropout, { x: { values: x, shape: [size] } }, { rate, seed });
          const reference = referenceDropout(x, rate, seed);
          const mismatch = y!.findIndex((v, i) => !Object.is(v, reference[i]));
          expect(mismatch, `size ${size}, rate ${rate}, seed ${seed}: [${mismatch}] is ${y![mismatch]}, expected ${reference[mismatch]}`).toBe(-1);
        }
      }
    }
  });

  it('TesseraDropout drops the fraction the rate asks for, and the mask is dropoutKeeps', (context) => {
    requireNative(context);
    const size = 128 * 64 * 256 + 1;
    const x = new Float32Array(size).fill(1);
    for (const rate of [0.2, 0.5]) {
      const [y] = runFused(FUSED_KERNELS.dropout, { x: { values: x, shape: [size] } }, { rate, seed: 7 });
      const keeps = dropoutKeeps(size, rate, 7);
      let dropped = 0;
      for (let i = 0; i < size; i++) {
        if ((y![i] !== 0) !== (keeps[i] === 1)) expect.fail(`unit ${i}: kept ${y![i] !== 0}, dropoutKeeps says ${keeps[i]}`);
        if (y![i] === 0) dropped++;
      }
      // Binomial: the standard deviation of the fraction is sqrt(rate (1 - rate) / size) < 4e-4.
      expect(Math.abs(dropped / size - rate)).toBeLessThan(2e-3);
    }
  });

  it('TesseraDropout with a new seed every call holds no memory per seed', (context) => {
    requireNative(context);
    // Eager TensorFlow caches a kernel instance per distinct attr set, forever: a seed attr cost
    // ~2 KB per new seed (~76 MiB here). The op takes its seed as a tensor instead.
    const x = tf.ones([16]);
    const calls = (first: number) => {
      for (let i = 0; i < 40000; i++) tf.tidy(() => void tf.engine().runKernel(FUSED_KERNELS.dropout, { x }, { rate: 0.2, seed: first + i }));
    };
    calls(0);
    const before = process.memoryUsage().rss;
    calls(1e6);
    expect((process.memoryUsage().rss - before) / 2 ** 20).toBeLessThan(24);
    x.dispose();
  });

  it('leaks no tensors, and reports bad inputs as errors, not crashes', (context) => {
    requireNative(context);
    const x = tf.ones([4, 8]);
    const gamma = tf.ones([8]);
    const before = tf.memory().numTensors;
    for (let step = 0; step < 3; step++) {
      tf.tidy(() => {
        const [y, dydx] = tf.engine().runKernel(FUSED_KERNELS.geluExact, { x }) as tf.Tensor[];
        const [normed, mean, rstd] = tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x: y!, gamma, beta: gamma }, { epsilon: 1e-6 }) as tf.Tensor[];
        tf.engine().runKernel(FUSED_KERNELS.layerNormGrad, { dy: dydx!, x: normed!, mean: mean!, rstd: rstd!, gamma });
        tf.engine().runKernel(FUSED_KERNELS.dropout, { x: normed! }, { rate: 0.5, seed: step });
      });
      expect(tf.memory().numTensors).toBe(before);
    }
    expect(() => tf.tidy(() => tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x, gamma: tf.ones([3]), beta: gamma }, { epsilon: 1e-6 }))).toThrow(
      /gamma must be \[8\]/,
    );
    expect(() => tf.tidy(() => tf.engine().runKernel(FUSED_KERNELS.dropout, { x }, { rate: 1, seed: 0 }))).toThrow(/rate must be in \[0, 1\)/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, gamma]);
  });
});
