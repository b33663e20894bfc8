import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, registerFusedKernels } from './kernels/index.ts';
import { WASM_FUSED_KERNELS } from './kernels/wasm.ts';
import './quiet-cpu.ts';
import { useFasterWasmKernels } from './wasm/index.ts';

/* ------------------------------------------------------------------------------------------ *
 * How each TF.js backend is found and switched on in Node. Every loader either activates its  *
 * backend and says what it got, or returns why it cannot, in words a user can act on. Nothing *
 * here throws for a missing or broken optional package: `selectBackend` decides what to do.   *
 * ------------------------------------------------------------------------------------------ */

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendOptions {
  /**
   * Threads for the backend's kernels. Default: every core the process may use. The native
   * backend reads it once, when the library loads (TF_NUM_INTRAOP_THREADS); an explicit
   * environment variable wins.
   */
  threads?: number;
}

/** What an activated backend reports about itself, for logs and `exp doctor`. */
export interface BackendDetail {
  /** e.g. "TensorFlow 2.12.1 (native, CPU)" or "WebAssembly, SIMD, 1 thread". */
  summary: string;
  /** The TF.js backend name the engine now runs on ('tensorflow', 'wasm', 'cpu'). */
  tfjsBackend: string;
  threads?: number;
  simd?: boolean;
  libraryVersion?: string;
}

export type LoadResult = { ok: true; detail: BackendDetail } | { ok: false; why: string };

export interface BackendLoader {
  readonly name: BackendName;
  /** Loads (if needed) and activates the backend with tf.setBackend. */
  load(options: BackendOptions): Promise<LoadResult>;
}

export const SETUP_HINT = 'run `pnpm setup:tensorflow` (docs/performance.md)';

const require = createRequire(import.meta.url);

/** The first line of an error's message: loaders report causes, not stack traces. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n').find((line) => line.trim() !== '')?.trim() ?? 'unknown error';
}

function isModuleNotFound(error: unknown, packageName: string): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'MODULE_NOT_FOUND' && firstLine(error).includes(packageName);
}

/** The subset of tfjs-node's backend object we look at. */
interface NativeKernelBackend {
  isUsingGpuDevice?: boolean;
  binding?: { TF_Version?: string };
}

/**
 * The native backend: @tensorflow/tfjs-node (CPU) or @tensorflow/tfjs-node-gpu (CUDA). Both
 * register a TF.js backend called 'tensorflow' and cannot share a process.
 */
export function nativeLoader(name: 'tensorflow' | 'tensorflow-gpu'): BackendLoader {
  const packageName = name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  return {
    name,
    async load(options) {
      let packageJson: string;
      try {
        packageJson = require.resolve(`${packageName}/package.json`);
      } catch {
        const how =
          name === 'tensorflow'
            ? 'it is an optional dependency of @tessera/core: run `pnpm install`, then `pnpm setup:tensorflow`'
            : 'needs an NVIDIA GPU with CUDA; see docs/performance.md';
        return { ok: false, why: `not installed (${packageName}; ${how})` };
      }
      // Check for the compiled addon before requiring the package: its own check throws an
      // error that recommends `npm rebuild`, which would fetch from a CDN we cannot reach.
      const addon = addonPath(packageJson);
      if (addon === undefined || !existsSync(addon)) {
        return { ok: false, why: `addon not built: ${SETUP_HINT}` };
      }
      // TensorFlow reads these when the library loads; keep its INFO/WARNING chatter out of the logs.
      process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
      process.env.TF_NUM_INTRAOP_THREADS ??= String(options.threads ?? availableParallelism());
      let backend: NativeKernelBackend;
      try {
        require(packageName);
        if (tf.findBackend('tensorflow') === null) {
          return { ok: false, why: `failed to load: ${packageName} registered no 'tensorflow' backend` };
        }
        if (!(await tf.setBackend('tensorflow'))) {
          return { ok: false, why: "failed to load: the 'tensorflow' backend did not initialise" };
        }
        backend = tf.backend() as unknown as NativeKernelBackend;
      } catch (error) {
        const message = firstLine(error);
        const hint = /\.so|shared object|symbol/i.test(message) ? ` (the library changed? ${SETUP_HINT})` : '';
        return { ok: false, why: `failed to load: ${message}${hint}` };
      }
      if (name === 'tensorflow-gpu' && backend.isUsingGpuDevice !== true) {
        return { ok: false, why: 'loaded, but TensorFlow found no usable GPU device' };
      }
      const libraryVersion = backend.binding?.TF_Version ?? builtVersion(packageJson) ?? 'unknown';
      const threads = Number(process.env.TF_NUM_INTRAOP_THREADS);
      // The fused kernels are TensorFlow CPU ops: tfjs-node-gpu (also 'tensorflow') runs without them.
      const fused = name === 'tensorflow' ? registerFusedKernels('tensorflow') : undefined;
      return {
        ok: true,
        detail: {
          summary:
            `TensorFlow ${libraryVersion} (native, ${name === 'tensorflow-gpu' ? 'GPU' : 'CPU'}, ${threads} threads` +
            (fused === undefined ? ')' : fused.registered ? ', fused kernels)' : `); fused kernels ${fused.why}`),
          tfjsBackend: 'tensorflow',
          threads,
          libraryVersion,
        },
      };
    },
  };
}

/** Where node-pre-gyp (and so the package itself) looks for the compiled addon. */
function addonPath(packageJson: string): string | undefined {
  try {
    const packageRequire = createRequire(packageJson);
    const preGyp = packageRequire('@mapbox/node-pre-gyp') as { find(packageJsonPath: string): string };
    return preGyp.find(packageJson);
  } catch {
    return undefined;
  }
}

/** The TensorFlow version `pnpm setup:tensorflow` built the addon against, if it did. */
function builtVersion(packageJson: string): string | undefined {
  const marker = join(dirname(packageJson), 'deps', 'TESSERA_TF_VERSION');
  return existsSync(marker) ? readFileSync(marker, 'utf8').trim() : undefined;
}

interface WasmModule {
  setThreadsCount(threads: number): void;
  getThreadsCount(): number;
}

/**
 * The WebAssembly backend (XNNPACK kernels). In Node it always runs single-threaded: TF.js
 * 4.22 turns multithreading off under Node (tensorflow/tfjs#3830), so the thread count only
 * matters in browsers; we still pass it on, for when that changes.
 */
export const wasmLoader: BackendLoader = {
  name: 'wasm',
  async load(options) {
    let wasm: WasmModule;
    try {
      wasm = (await import('@tensorflow/tfjs-backend-wasm')) as unknown as WasmModule;
    } catch (error) {
      return isModuleNotFound(error, '@tensorflow/tfjs-backend-wasm')
        ? { ok: false, why: 'not installed (@tensorflow/tfjs-backend-wasm)' }
        : { ok: false, why: `failed to load: ${firstLine(error)}` };
    }
    try {
      if (tf.findBackend('wasm') === null) wasm.setThreadsCount(options.threads ?? availableParallelism());
      if (!(await tf.setBackend('wasm'))) return { ok: false, why: "failed to load: the 'wasm' backend did not initialise" };
      useFasterWasmKernels();
      registerFusedKernels('wasm');
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
      const threads = wasm.getThreadsCount();
      return {
        ok: true,
        detail: {
          summary: `WebAssembly (XNNPACK), ${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}, ${fusedKernelsSummary('wasm', Object.keys(WASM_FUSED_KERNELS))}`,
          tfjsBackend: 'wasm',
          threads,
          simd,
        },
      };
    } catch (error) {
      return { ok: false, why: `failed to load: ${firstLine(error)}` };
    }
  },
};


/**
 * Which of the fused kernels (kernels/) the backend has: "fused kernels" when all it implements
 * (for wasm: all but batch norm and bias add, which it has none of), else which.
 */
function fusedKernelsSummary(backend: string, names: string[] = Object.values(FUSED_KERNELS)): string {
  const present = names.filter((name) => tf.getKernel(name, backend) !== undefined);
  if (present.length === names.length) return 'fused kernels';
  return present.length === 0 ? 'no fused kernels' : `fused kernels: ${present.map((name) => name.replace(/^Tessera/, '')).join(', ')}`;
}

/** Plain JavaScript kernels: always there, and the slowest. */
export const cpuLoader: BackendLoader = {
  name: 'cpu',
  async load() {
    if (!(await tf.setBackend('cpu'))) return { ok: false, why: "failed to load: the 'cpu' backend did not initialise" };
    registerFusedKernels('cpu');
    return { ok: true, detail: { summary: `JavaScript (tfjs-backend-cpu), 1 thread, ${fusedKernelsSummary('cpu')}`, tfjsBackend: 'cpu', threads: 1 } };
  },
};

/** Best first: the order `auto` tries them in. */
export const defaultLoaders: readonly BackendLoader[] = [
  nativeLoader('tensorflow-gpu'),
  nativeLoader('tensorflow'),
  wasmLoader,
  cpuLoader,
];
