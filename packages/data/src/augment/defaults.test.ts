import * as tf from '@tensorflow/tfjs';
import { createRegistries, defaultsOf, type Transform } from '@tessera/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerData } from '../index.ts';

/*
 * A transform made from its required params alone must do exactly what the one made with its
 * schema's documented defaults does (the values the validator writes into a config, so what a
 * run records): the code's own fallbacks may not drift from the schema.
 */
beforeAll(async () => {
  await tf.setBackend('cpu');
});

const registries = registerData(createRegistries());
/** The params a transform cannot do without, with plain values. */
const REQUIRED: Record<string, Record<string, unknown>> = {
  random_crop: { padding: 2 },
  random_rotation: { factor: 0.1 },
  random_zoom: { height_factor: 0.2 },
  resize: { height: 6, width: 5 },
};

/** Four 8x8 RGB images of 0..255 values, their uint8 bytes, and one-hot labels. */
const pixels = Uint8Array.from({ length: 4 * 8 * 8 * 3 }, (_, i) => (i * 37 + 11) % 256);
const raw = { bytes: pixels, count: 4, height: 8, width: 8, channels: 3, offset: 0, stride: 8 * 8 * 3 };

/** Everything a transform computes from one batch: evaluation, two training seeds, and the labels where it mixes. */
function outputs(transform: Transform): number[][] {
  if (transform.adapt) transform.adapt(raw);
  return tf.tidy(() => {
    // adapt reads channel planes (CIFAR records); the batch is the same bytes as NHWC floats.
    const x = tf.tensor4d(Float32Array.from(pixels), [4, 8, 8, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3).toFloat() as tf.Tensor2D;
    const results: tf.Tensor[] = [transform.apply(x, { training: false, seed: 1 })];
    for (const seed of [1, 2]) {
      if (transform.applyWithLabels) {
        const mixed = transform.applyWithLabels(x, y, { training: true, seed });
        results.push(mixed.x, mixed.yOneHot);
      } else {
        results.push(transform.apply(x, { training: true, seed }));
      }
    }
    return results.map((t) => Array.from(t.dataSync()));
  });
}

describe("every transform: its documented defaults are its runtime defaults", () => {
  it.each(registries.transforms.list().map((entry) => [entry.type, entry] as const))('%s', (type, entry) => {
    const params = entry.params as { properties: Record<string, unknown>; required?: string[] };
    expect(Object.keys(REQUIRED[type] ?? {}).sort()).toEqual([...(params.required ?? [])].sort());
    const defaults = defaultsOf({ properties: params.properties });
    expect(Object.keys(defaults).length).toBeGreaterThan(0);
    const bare = entry.create(structuredClone(REQUIRED[type] ?? {}));
    const documented = entry.create({ ...structuredClone(REQUIRED[type] ?? {}), ...structuredClone(defaults) });
    expect(outputs(bare)).toEqual(outputs(documented));
  });
});
