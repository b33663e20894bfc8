import { deriveSeed, fingerprint, Rng } from '@tessera/core/random';
import type { ImageSet } from '../store.ts';

export interface SyntheticSpec {
  height: number;
  width: number;
  channels: number;
  classes: number;
  count: number;
  /** Standard deviation of the per-pixel noise, on the 0..255 scale. */
  noise: number;
  seed: number;
}

/** One fixed mean image per class, values in [64, 192), from the seed alone. */
function classPatterns(spec: SyntheticSpec): Float32Array[] {
  const size = spec.height * spec.width * spec.channels;
  const rng = new Rng(deriveSeed(spec.seed, 0x7a11));
  return Array.from({ length: spec.classes }, () => Float32Array.from({ length: size }, () => 64 + 128 * rng.next()));
}

/**
 * A learnable synthetic image set: image i has class i mod classes (balanced) and is that class's
 * mean pattern plus Gaussian noise, clipped to uint8. Stored planar, like CIFAR records.
 * Different `stream`s (train, test) share the patterns but not the noise.
 */
export function syntheticImages(spec: SyntheticSpec, stream: number): ImageSet {
  const size = spec.height * spec.width * spec.channels;
  const patterns = classPatterns(spec);
  const rng = new Rng(deriveSeed(spec.seed, stream));
  const bytes = new Uint8Array(spec.count * size);
  const labels = new Uint8Array(spec.count);
  for (let i = 0; i < spec.count; i++) {
    const label = i % spec.classes;
    labels[i] = label;
    const pattern = patterns[label]!;
    for (let p = 0; p < size; p++) bytes[i * size + p] = Math.min(255, Math.max(0, Math.round(pattern[p]! + spec.noise * rng.normal())));
  }
  return { bytes, count: spec.count, height: spec.height, width: spec.width, channels: spec.channels, offset: 0, stride: size, labels };
}

export function syntheticFingerprint(spec: SyntheticSpec): string {
  return fingerprint(['synthetic', spec]);
}
