import type * as tf from '@tensorflow/tfjs';

/** The part of the wasm backend object the replacements use (all exist on BackendWasm). */
export interface RefCountingBackend {
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

/**
 * The backend's heap allocator and views (every output is allocated before any view is taken),
 * and its Emscripten module, whose memory the SIMD kernels import.
 */
export interface HeapBackend extends RefCountingBackend {
  wasm?: { asm?: { memory?: object } };
}
