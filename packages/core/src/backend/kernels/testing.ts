import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, type TestContext } from 'vitest';
import { Rng } from '../../random/index.ts';
import { nativeLoader } from '../loaders.ts';
import { loadWasmBackend } from '../wasm/test-helpers.ts';
import { FUSED_KERNELS, hasFusedKernel, registerFusedKernels } from './index.ts';
import { NATIVE_OPS_LIBRARY } from './native.ts';
import { WASM_FUSED_KERNELS } from './wasm.ts';

/* What the kernels' tests share: each kernel folder tests its reference, wasm and native kernels with these. */

/** The cpu backend with its fused kernels (the references), for a suite's beforeAll. */
export async function useCpuKernels(): Promise<void> {
  await tf.setBackend('cpu');
  registerFusedKernels('cpu');
}

/** A deterministic pseudo-random vector in [-scale, scale). */
export function noise(size: number, seed: number, scale = 3): Float64Array {
  const out = new Float64Array(size);
  let s = seed;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/** The wasm backend, as its loader sets it up (kernel replacements and fused kernels), for a suite's beforeAll. */
export async function useWasmBackend(): Promise<void> {
  await loadWasmBackend();
  await tf.setBackend('wasm');
}

/**
 * Runs wasm.ts's implementation of a fused kernel (registered or not: see
 * fusedKernelsToRegister), returns its outputs' values and disposes them.
 */
export function runWasmKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, number> = {}): Float32Array[] {
  const result = WASM_FUSED_KERNELS[name]!({ inputs, attrs, backend: tf.backend() }) as tf.TensorInfo | tf.TensorInfo[];
  const outputs = (Array.isArray(result) ? result : [result]).map((info) => tf.engine().makeTensorFromTensorInfo(info));
  const values = outputs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outputs);
  return values;
}

/** The largest |got - want| / (atol + rtol |want|): at most 1 passes. */
export function worstError(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const error = Math.abs(got[i]! - want[i]!) / (atol + rtol * Math.abs(want[i]!));
    if (!(error <= worst)) worst = error; // NaN propagates as a failure
  }
  return worst;
}

/**
 * Loads the native backend for the file's tests (beforeAll) and sets cpu back after them; returns
 * the check each test starts with: skipped, with the reason, where the native backend is not set
 * up (pnpm setup:tensorflow); where it is, the op library must be there too, since the same script
 * builds both.
 */
export function useNativeBackend(): (context: TestContext) => void {
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
  return (context) => {
    if (missing !== undefined) context.skip(missing);
  };
}

/** Seeded uniforms in [0, 1), so every run sees the same "random" data. */
export function uniforms(count: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count }, () => rng.next());
}

/** Uniform in [low, high). */
export function between(count: number, low: number, high: number, seed: number): Float32Array {
  return uniforms(count, seed).map((u) => low + (high - low) * u);
}

/** Runs a fused kernel on float32 arrays and returns its outputs' values; frees every tensor it made. */
export function runNativeKernel(name: string, inputs: Record<string, { values: Float32Array; shape: number[] }>, attrs: tf.NamedAttrMap = {}): Float32Array[] {
  return tf.tidy(() => {
    const tensors = Object.fromEntries(Object.entries(inputs).map(([key, { values, shape }]) => [key, tf.tensor(values, shape, 'float32')]));
    const out = tf.engine().runKernel(name, tensors, attrs) as tf.Tensor | tf.Tensor[];
    return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync() as Float32Array);
  });
}

/** The largest |actual - expected| / (floor + scale(i) |expected|-ish), to read failures by. */
export function expectClose(actual: Float32Array, expected: ArrayLike<number>, tolerance: (i: number) => number, what: string): void {
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
