import type { BlockEntry, Registries } from '@tessera/core/registry';
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
];

/** Registers the model primitives in `registries.blocks` (the combinators come from core). */
export function registerModels(registries: Registries): Registries {
  for (const entry of primitiveEntries) registries.blocks.register(entry);
  return registries;
}
