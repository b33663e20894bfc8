import * as tf from '@tensorflow/tfjs';

/* ------------------------------------------------------------------------------------------ *
 * Kernel replacements for the wasm backend where TF.js 4.22's own kernel does needless work.  *
 * ------------------------------------------------------------------------------------------ */

/** The part of the wasm backend object the replacements use (both exist on BackendWasm). */
interface RefCountingBackend {
  incRef(dataId: object): void;
}

/**
 * Identity without a copy. The engine runs Identity on every tensor it saves for the backward
 * pass (Engine.clone), and on wasm that kernel copies the whole buffer: a training step of the
 * reference models makes ~200-300 such copies (5-6% of the step) and holds each saved tensor
 * twice. The backend already reference-counts its buffers (its Reshape shares data the same way)
 * and no wasm kernel writes into an input, so sharing the buffer is safe.
 */
function identitySharingData({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  (backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

let installed = false;

/** Replaces the wasm backend's copying Identity kernel (once per process). */
export function useSharingIdentityOnWasm(): void {
  if (installed) return;
  const original = tf.getKernel('Identity', 'wasm');
  // Strings live outside the wasm heap; keep the original kernel for them.
  const fallback = original?.kernelFunc;
  if (original) tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string' && fallback) return fallback(args) as tf.TensorInfo;
      return identitySharingData(args);
    },
  });
  installed = true;
}
