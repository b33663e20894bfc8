import type { TransformEntry } from '@tessera/core/registry';
import { autoAugmentEntry, randAugmentEntry } from './auto_augment.ts';
import { cutmixEntry, mixupEntry } from './mix.ts';
import { normalizeEntry } from './normalize.ts';
import { randomCropEntry } from './random_crop.ts';
import { randomFlipEntry } from './random_flip.ts';
import { randomRotationEntry } from './random_rotation.ts';
import { randomZoomEntry } from './random_zoom.ts';
import { resizeEntry } from './resize.ts';

export const transformEntries: TransformEntry[] = [
  normalizeEntry,
  resizeEntry,
  randomFlipEntry,
  randomZoomEntry,
  randomRotationEntry,
  randomCropEntry,
  mixupEntry,
  cutmixEntry,
  randAugmentEntry,
  autoAugmentEntry,
];
