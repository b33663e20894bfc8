import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS } from './contract.ts';
import { dropoutScale, dropoutThreshold } from './dropout/reference.ts';

/* ------------------------------------------------------------------------------------------- *
 * The native backend's fused kernels: TensorFlow custom ops of the same names (compiled from   *
 * each kernel's native.cc by `pnpm setup:tensorflow`), each registered as the TF.js kernel     *
 * of backend 'tensorflow' that runs the op in one call through tfjs-node's binding.            *
 * ------------------------------------------------------------------------------------------- */

/** Where scripts/setup-tensorflow.sh puts the compiled op library (a Node addon). */
// Beside the C++ sources in src/, also when this module runs built from dist/ (same depth).
export const NATIVE_OPS_LIBRARY = fileURLToPath(new URL('../../../src/backend/kernels/build/fused-kernels.node', import.meta.url));

/** Set to 0 to run the native backend without its fused kernels (to compare, or to rule them out). */
export const NATIVE_FUSED_KERNELS_SWITCH = 'TESSERA_NATIVE_FUSED_KERNELS';

/** Whether the kernels are registered; if not, why, with what to do about it. */
export type NativeFusedKernels = { registered: true } | { registered: false; why: string };

const REBUILD_HINT = 'run `pnpm setup:tensorflow`';

/** An attribute as tfjs-node's binding takes it (type is one of the binding's TF_ATTR_* codes). */
interface OpAttr {
  name: string;
  type: number;
  value: number | boolean;
}

/** The part of tfjs-node's backend the kernels call. */
interface NativeOpBackend {
  binding: { TF_ATTR_FLOAT: number; TF_ATTR_INT: number; TF_ATTR_BOOL: number; TF_ATTR_TYPE: number; TF_FLOAT: number };
  write(values: Int32Array | Float32Array, shape: number[], dtype: 'int32' | 'float32'): object;
  disposeData(dataId: object): void;
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[]): tf.TensorInfo;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.TensorInfo[], numOutputs: number): tf.TensorInfo[];
}

const require = createRequire(import.meta.url);

/**
 * Loads the op library into the process's TensorFlow and registers the fused kernels for backend
 * 'tensorflow'. Only for tfjs-node's CPU build: the ops have no GPU kernels, and tfjs-node-gpu
 * registers a backend of the same name. Never throws: without the library (not built, or built
 * against another TensorFlow), or with TESSERA_NATIVE_FUSED_KERNELS=0, no kernel is registered,
 * and the primitives use their composite ops.
 */
export function registerNativeFusedKernels(library = NATIVE_OPS_LIBRARY): NativeFusedKernels {
  if (process.env[NATIVE_FUSED_KERNELS_SWITCH] === '0') {
    for (const name of Object.values(FUSED_KERNELS)) {
      if (tf.getKernel(name, 'tensorflow') !== undefined) tf.unregisterKernel(name, 'tensorflow');
    }
    return { registered: false, why: `turned off (${NATIVE_FUSED_KERNELS_SWITCH}=0)` };
  }
  if (tf.getKernel(FUSED_KERNELS.geluExact, 'tensorflow') !== undefined) return { registered: true };
  if (!existsSync(library)) return { registered: false, why: `not built: ${REBUILD_HINT}` };
  try {
    // Loading runs the library's REGISTER_OP/REGISTER_KERNEL_BUILDER in the TensorFlow tfjs-node loaded.
    require(library);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { registered: false, why: `failed to load (${message.split('\n')[0]}): ${REBUILD_HINT}` };
  }
  const register = (kernelName: string, run: (backend: NativeOpBackend, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[]) =>
    tf.registerKernel({
      kernelName,
      backendName: 'tensorflow',
      kernelFunc: ({ inputs, backend, attrs }) => run(backend as unknown as NativeOpBackend, inputs, attrs as tf.NamedAttrMap),
    });
  const input = (inputs: tf.NamedTensorInfoMap, name: string) => inputs[name] as tf.TensorInfo;
  register(FUSED_KERNELS.geluExact, (backend, inputs) =>
    backend.executeMultipleOutputs(FUSED_KERNELS.geluExact, [], [input(inputs, 'x')], 2),
  );
  register(FUSED_KERNELS.layerNorm, (backend, inputs, attrs) =>
    backend.executeMultipleOutputs(
      FUSED_KERNELS.layerNorm,
      [{ name: 'epsilon', type: backend.binding.TF_ATTR_FLOAT, value: attrs.epsilon as number }],
      ['x', 'gamma', 'beta'].map((name) => input(inputs, name)),
      3,
    ),
  );
  register(FUSED_KERNELS.layerNormGrad, (backend, inputs) =>
    backend.executeMultipleOutputs(
      FUSED_KERNELS.layerNormGrad,
      [],
      ['dy', 'x', 'mean', 'rstd', 'gamma'].map((name) => input(inputs, name)),
      3,
    ),
  );
  register(FUSED_KERNELS.dropout, (backend, inputs, attrs) => {
    const rate = attrs.rate as number;
    const { TF_ATTR_FLOAT, TF_ATTR_INT } = backend.binding;
    // The op takes the seed as a tensor (see dropout/native.cc): a backend-only scalar, freed here.
    const seed: tf.TensorInfo = { dataId: backend.write(Int32Array.of(attrs.seed as number), [], 'int32'), shape: [], dtype: 'int32' };
    try {
      return backend.executeSingleOutput(
        FUSED_KERNELS.dropout,
        [
          { name: 'rate', type: TF_ATTR_FLOAT, value: rate },
          // The op's rate attr is float32; the threshold and scale the contract derives from the
          // float64 rate go along, so the mask and the products are bit-identical to the reference.
          { name: 'threshold', type: TF_ATTR_INT, value: dropoutThreshold(rate) },
          { name: 'scale', type: TF_ATTR_FLOAT, value: dropoutScale(rate) },
        ],
        [input(inputs, 'x'), seed],
      );
    } finally {
      backend.disposeData(seed.dataId);
    }
  });
  // Batch norm is TensorFlow's own FusedBatchNormV3 pair (the kernels Keras runs): nothing to
  // compile, only the contract's inputs and outputs mapped onto the ops'.
  const batchNormAttrs = (backend: NativeOpBackend, attrs: tf.NamedAttrMap): OpAttr[] => {
    const { TF_ATTR_TYPE, TF_ATTR_FLOAT, TF_ATTR_BOOL, TF_FLOAT } = backend.binding;
    return [
      { name: 'T', type: TF_ATTR_TYPE, value: TF_FLOAT },
      { name: 'U', type: TF_ATTR_TYPE, value: TF_FLOAT },
      { name: 'epsilon', type: TF_ATTR_FLOAT, value: attrs.epsilon as number },
      { name: 'is_training', type: TF_ATTR_BOOL, value: true },
    ];
  };
  // Training mode with the default exponential_avg_factor 1 ignores the estimated mean and
  // variance inputs (empty, as tf.compat.v1's fused_batch_norm passes them), and on CPU the
  // gradient ignores reserve_space_3.
  const withEmpty = <T>(backend: NativeOpBackend, run: (empty: tf.TensorInfo) => T): T => {
    const empty: tf.TensorInfo = { dataId: backend.write(new Float32Array(0), [0], 'float32'), shape: [0], dtype: 'float32' };
    try {
      return run(empty);
    } finally {
      backend.disposeData(empty.dataId);
    }
  };
  register(FUSED_KERNELS.batchNorm, (backend, inputs, attrs) =>
    withEmpty(backend, (empty) => {
      // Outputs: y, batch_mean, batch_variance (Bessel-corrected), reserve_space_1 (the mean),
      // reserve_space_2 (the biased variance), reserve_space_3.
      const outputs = backend.executeMultipleOutputs(
        'FusedBatchNormV3',
        batchNormAttrs(backend, attrs),
        [input(inputs, 'x'), input(inputs, 'gamma'), input(inputs, 'beta'), empty, empty],
        6,
      );
      for (const i of [2, 3, 5]) backend.disposeData(outputs[i]!.dataId);
      return [outputs[0]!, outputs[1]!, outputs[4]!];
    }),
  );
  register(FUSED_KERNELS.batchNormGrad, (backend, inputs, attrs) =>
    withEmpty(backend, (empty) => {
      // Outputs: x_backprop, scale_backprop, offset_backprop, reserve_space_4, reserve_space_5.
      const outputs = backend.executeMultipleOutputs(
        'FusedBatchNormGradV3',
        batchNormAttrs(backend, attrs),
        [...['dy', 'x', 'gamma', 'mean', 'variance'].map((name) => input(inputs, name)), empty],
        5,
      );
      for (const i of [3, 4]) backend.disposeData(outputs[i]!.dataId);
      return outputs.slice(0, 3);
    }),
  );
  const floatType = (backend: NativeOpBackend): OpAttr[] => [{ name: 'T', type: backend.binding.TF_ATTR_TYPE, value: backend.binding.TF_FLOAT }];
  register(FUSED_KERNELS.biasAdd, (backend, inputs) => backend.executeSingleOutput('BiasAdd', floatType(backend), [input(inputs, 'x'), input(inputs, 'bias')]));
  register(FUSED_KERNELS.biasAddGrad, (backend, inputs) => backend.executeSingleOutput('BiasAddGrad', floatType(backend), [input(inputs, 'dy')]));
  return { registered: true };
}
