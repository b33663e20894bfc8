import type { BlockEntry, Registries } from '@tessera/core/registry';
import { batchNormEntry } from './primitives/batch_norm.ts';
import { classTokenEntry } from './primitives/class_token.ts';
import { conv2dEntry } from './primitives/conv2d.ts';
import { dropPathEntry } from './primitives/drop_path.ts';
import { flattenEntry } from './primitives/flatten.ts';
import { layerScaleEntry } from './primitives/layer_scale.ts';
import { multiHeadAttentionEntry } from './primitives/multi_head_attention.ts';
import { reshapeEntry } from './primitives/reshape.ts';
import { rescalingEntry } from './primitives/rescaling.ts';
import { averagePool2dEntry, maxPool2dEntry } from './primitives/pool_2d.ts';
import { activationEntry } from './primitives/activation.ts';
import { denseEntry } from './primitives/dense.ts';
import { dropoutEntry } from './primitives/dropout.ts';
import { fourier2dEntry } from './primitives/fourier_2d.ts';
import { globalAveragePoolingEntry } from './primitives/global_average_pooling.ts';
import { layerNormEntry } from './primitives/layer_norm.ts';
import { patchesEntry } from './primitives/patches.ts';
import { positionEmbeddingEntry } from './primitives/position_embedding.ts';
import { splitEntry } from './primitives/split.ts';
import { transposeEntry } from './primitives/transpose.ts';

export { BatchNorm } from './primitives/batch_norm.ts';
export { ClassToken } from './primitives/class_token.ts';
export { Conv2d } from './primitives/conv2d.ts';
export { DropPath } from './primitives/drop_path.ts';
export { Flatten } from './primitives/flatten.ts';
export { LayerScale } from './primitives/layer_scale.ts';
export { MultiHeadAttention } from './primitives/multi_head_attention.ts';
export { Reshape } from './primitives/reshape.ts';
export { Rescaling } from './primitives/rescaling.ts';
export { Pool2d } from './primitives/pool_2d.ts';
export { Activation, activate, ACTIVATIONS, type ActivationName } from './primitives/activation.ts';
export { Dense } from './primitives/dense.ts';
export { Dropout } from './primitives/dropout.ts';
export { Fourier2d } from './primitives/fourier_2d.ts';
export { GlobalAveragePooling } from './primitives/global_average_pooling.ts';
export { LayerNorm, layerNorm } from './primitives/layer_norm.ts';
export { Patches } from './primitives/patches.ts';
export { PositionEmbedding } from './primitives/position_embedding.ts';
export { Split } from './primitives/split.ts';
export { Transpose } from './primitives/transpose.ts';
export { INITIALIZERS, type InitializerName } from './primitives/common.ts';

/** Every model primitive, in the order `exp blocks` lists them. */
export const primitiveEntries: readonly BlockEntry[] = [
  patchesEntry,
  denseEntry,
  layerNormEntry,
  dropoutEntry,
  activationEntry,
  transposeEntry,
  fourier2dEntry,
  positionEmbeddingEntry,
  splitEntry,
  globalAveragePoolingEntry,
  rescalingEntry,
  conv2dEntry,
  batchNormEntry,
  maxPool2dEntry,
  averagePool2dEntry,
  multiHeadAttentionEntry,
  classTokenEntry,
  flattenEntry,
  reshapeEntry,
  layerScaleEntry,
  dropPathEntry,
];

/** Registers the model primitives in `registries.blocks` (the combinators come from core). */
export function registerModels(registries: Registries): Registries {
  for (const entry of primitiveEntries) registries.blocks.register(entry);
  return registries;
}
