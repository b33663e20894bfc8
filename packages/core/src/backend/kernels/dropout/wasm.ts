import * as tf from '@tensorflow/tfjs';
import type { HeapBackend } from '../../wasm/heap.ts';
import { simdKernels } from '../../wasm/simd/module.ts';
import { DROPOUT_WEYL_STEP, dropoutKey, dropoutScale, dropoutThreshold } from './reference.ts';

/* TesseraDropout on the wasm heap: the SIMD function of simd.ts for the bulk, this JavaScript loop for the remainder and where SIMD is missing. */

/** fused.ts's fmix32 without the final `>>> 0`: the same bits as an int32, which V8 keeps in a register. */
function fmix32Signed(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * TesseraDropout on units [start, size) in JavaScript (start even): the tail the SIMD loop leaves
 * (fewer than eight units), or everything where WebAssembly SIMD is missing. Each pair of units
 * hashes its counter (fused.ts's dropoutPairBits, the counter advanced by the Weyl step instead
 * of a multiply) and keeps or drops both from the two halves of the hash.
 */
function dropoutRange(input: Float32Array, out: Float32Array, start: number, rate: number, seed: number): void {
  const threshold = dropoutThreshold(rate);
  // The contract's float32 scale: the float64 product of two float32 values is exact, so the
  // store rounds it as a float32 product would.
  const keptScale = new Float64Array([dropoutScale(rate), 0]);
  const size = input.length;
  let counter = (dropoutKey(seed) + Math.imul(start >>> 1, DROPOUT_WEYL_STEP)) | 0;
  let i = start;
  for (; i + 1 < size; i += 2) {
    const h = fmix32Signed(counter);
    // (bits - threshold) >>> 31 is 1 exactly when bits < threshold (dropped): an index, not a
    // branch, which would mispredict at random. A dropped negative value becomes -0, as the contract says.
    out[i] = input[i]! * keptScale[((h & 0xffff) - threshold) >>> 31]!;
    out[i + 1] = input[i + 1]! * keptScale[((h >>> 16) - threshold) >>> 31]!;
    counter = (counter + DROPOUT_WEYL_STEP) | 0;
  }
  // An odd size: the last unit is decided by the low half of its pair's hash.
  if (i < size) out[i] = input[i]! * keptScale[((fmix32Signed(counter) & 0xffff) - threshold) >>> 31]!;
}

/** TesseraDropout without a mask tensor: eight units (four hashes) at a time in WebAssembly SIMD, the rest in JavaScript. */
export function dropout({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = inputs.x as tf.TensorInfo;
  const { rate, seed } = attrs as unknown as { rate: number; seed: number };
  const heap = backend as HeapBackend;
  const outInfo = heap.makeOutput(x.shape, 'float32');
  const input = heap.typedArrayFromHeap(x);
  const out = heap.typedArrayFromHeap(outInfo);
  const simd = simdKernels(heap);
  const vectorised = simd ? input.length - (input.length % 8) : 0;
  if (simd && vectorised > 0) {
    simd.dropout(input.byteOffset, out.byteOffset, input.byteOffset + 4 * vectorised, dropoutKey(seed), dropoutThreshold(rate), dropoutScale(rate));
  }
  dropoutRange(input, out, vectorised, rate, seed);
  return outInfo;
}
