import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, createRegistries, exportModel, loadExperiment, registerCombinators, wasmLoader, type ModelConfig } from '@tessera/core';
import { registerModels } from './index.ts';

/*
 * The forward function of each reference experiment against the Keras example itself:
 * __fixtures__/keras_reference.py builds the Keras models layer for layer, loads the weights
 * Tessera initialises with seed 42, and records the logits of a fixed input. Same weights, same
 * input, so the logits must agree to float32 rounding: this checks patch order, the Fourier
 * transform, LayerNorm's epsilon, gelu's form, the gate's split and every residual.
 */

const registries = registerModels(registerCombinators(createRegistries()));
const fixture = fileURLToPath(new URL('./__fixtures__/keras_reference.json', import.meta.url));
const reference = JSON.parse(readFileSync(fixture, 'utf8')) as Record<string, { params: number; logits: number[][] }>;

/** sin of the flat index, scaled per example: keras_reference.py's fixed_input(). */
function fixedInput(): tf.Tensor4D {
  const size = 64 * 64 * 3;
  const values = Float32Array.from({ length: 2 * size }, (_, i) => Math.sin(i * 0.37) * (1 + Math.floor(i / size)));
  return tf.tensor4d(values, [2, 64, 64, 3]);
}

beforeAll(async () => {
  const loaded = await wasmLoader.load({ threads: 1 });
  if (!loaded.ok) await tf.setBackend('cpu');
});

describe('the reference experiments compute what the Keras example computes', () => {
  it.each(['mixer', 'fnet', 'gmlp'])('%s: same logits as Keras with the same weights', async (name) => {
    const loaded = loadExperiment(fileURLToPath(new URL(`../../../experiments/${name}.yaml`, import.meta.url)));
    const config = loaded.config as { vars?: Record<string, unknown>; model: ModelConfig };
    const model = buildModel(config.model, { registries, inputShape: [64, 64, 3], seed: 42, vars: config.vars });
    const exportTo = process.env.TESSERA_KERAS_EXPORT;
    if (exportTo) await exportModel(model, join(exportTo, name));

    const want = reference[name]!;
    expect(model.countParams()).toBe(want.params);
    const x = fixedInput();
    const got = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    const scale = Math.max(...want.logits.flat().map(Math.abs));
    let worst = 0;
    got.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - want.logits[i]![j]!)))));
    // float32 sums in another order (and an FFT against matrix products): measured ~1.5e-6 of the scale.
    expect(worst / scale).toBeLessThan(1e-5);
    // The logits are not degenerate: the examples differ and so do the classes.
    expect(new Set(got[0]!.map((v) => v.toFixed(3))).size).toBeGreaterThan(90);
    model.dispose();
  });
});
