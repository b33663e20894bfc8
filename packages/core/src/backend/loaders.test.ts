import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { cpuLoader, nativeLoader, wasmLoader } from './loaders.ts';
import { describeBackends } from './select.ts';

// The real loaders, on whatever this machine has. The native backend is optional: where
// `pnpm setup:tensorflow` has run these tests check it computes, elsewhere that it is refused
// with the setup hint.

const require = createRequire(import.meta.url);
const product = [[19, 22], [43, 50]];
const multiply = () => tf.tidy(() => tf.tensor2d([[1, 2], [3, 4]]).matMul(tf.tensor2d([[5, 6], [7, 8]])).arraySync());

function tfjsNodeDir(): string | undefined {
  try {
    return dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
  } catch {
    return undefined;
  }
}

describe('backend loaders', () => {
  it('cpu always loads and computes', async () => {
    const result = await cpuLoader.load({});
    expect(result).toEqual({ ok: true, detail: { summary: 'JavaScript (tfjs-backend-cpu), 1 thread, fused kernels', tfjsBackend: 'cpu', threads: 1 } });
    expect(tf.getBackend()).toBe('cpu');
    expect(multiply()).toEqual(product);
  });

  it('wasm loads with SIMD and, under Node, one thread', async () => {
    const result = await wasmLoader.load({ threads: 2 });
    if (!result.ok) throw new Error(result.why);
    expect(tf.getBackend()).toBe('wasm');
    expect(result.detail).toMatchObject({ tfjsBackend: 'wasm', simd: true, threads: 1 });
    expect(result.detail.summary).toBe('WebAssembly (XNNPACK), SIMD, 1 thread, fused kernels');
    expect(multiply()).toEqual(product);
    const gradient = tf.tidy(() => tf.grad((x: tf.Tensor) => x.square().sum())(tf.tensor1d([1, 2, 3])).arraySync());
    expect(gradient).toEqual([2, 4, 6]);
  });

  it('tensorflow-gpu is refused as not installed (no CUDA package here)', async (context) => {
    let installed = true;
    try {
      require.resolve('@tensorflow/tfjs-node-gpu/package.json');
    } catch {
      installed = false;
    }
    if (installed) context.skip('@tensorflow/tfjs-node-gpu is installed here: nothing to check about its absence');
    const result = await nativeLoader('tensorflow-gpu').load({});
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.why).toMatch(/^not installed \(@tensorflow\/tfjs-node-gpu; /);
  });

  it('tensorflow (native) computes when set up, and otherwise says to run pnpm setup:tensorflow', async () => {
    const dir = tfjsNodeDir();
    const marker = dir && join(dir, 'deps', 'TESSERA_TF_VERSION');
    const built = marker !== undefined && existsSync(marker) && existsSync(join(dir!, 'lib'));
    const result = await nativeLoader('tensorflow').load({});
    if (!built) {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.why).toMatch(/pnpm setup:tensorflow|not installed/);
      return;
    }
    if (!result.ok) throw new Error(result.why);
    const version = readFileSync(marker!, 'utf8').trim();
    expect(result.detail.libraryVersion).toBe(version);
    expect(result.detail.summary).toMatch(new RegExp(`^TensorFlow ${version.replace(/\./g, '\\.')} \\(native, CPU, \\d+ threads(, fused kernels\\)|\\); fused kernels .+)$`));
    // The ESM tfjs this package imports and the CJS one tfjs-node registered into share one engine.
    expect(tf.getBackend()).toBe('tensorflow');
    expect(multiply()).toEqual(product);
    const before = tf.memory().numTensors;
    const gradient = tf.tidy(() => tf.grad((x: tf.Tensor) => x.square().sum())(tf.tensor1d([1, 2, 3])).arraySync());
    expect(gradient).toEqual([2, 4, 6]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('describeBackends reports cpu and wasm available and restores the active backend', async () => {
    await tf.setBackend('cpu');
    const reports = await describeBackends();
    expect(reports.map((r) => r.name)).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
    expect(reports.find((r) => r.name === 'wasm')?.available).toBe(true);
    expect(reports.find((r) => r.name === 'cpu')?.available).toBe(true);
    expect(tf.getBackend()).toBe('cpu');
  });
});
