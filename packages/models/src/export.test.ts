import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, createRegistries, exportModel, importModel, loadExperiment, registerCombinators, wasmLoader, type ModelConfig } from '@tessera/core';
import { registerModels } from './index.ts';

const registries = registerModels(registerCombinators(createRegistries()));

beforeAll(async () => {
  // The full-size models: wasm runs their forward pass ~10x faster than the plain JS backend.
  const loaded = await wasmLoader.load({ threads: 1 });
  if (!loaded.ok) await tf.setBackend('cpu');
});

describe('export -> load -> predict', () => {
  it.each(['mixer', 'fnet', 'gmlp'])('%s: the loaded model gives the same logits as the one in memory', async (name) => {
    const loaded = loadExperiment(fileURLToPath(new URL(`../../../experiments/${name}.yaml`, import.meta.url)));
    const config = loaded.config as { vars?: Record<string, unknown>; model: ModelConfig };
    const model = buildModel(config.model, { registries, inputShape: [64, 64, 3], seed: 42, vars: config.vars });
    const dir = mkdtempSync(join(tmpdir(), `tessera-export-${name}-`));
    await exportModel(model, dir, { experiment: name, inputShape: [64, 64, 3] });

    // The weights file holds every float32 weight, nothing else.
    const params = model.countParams();
    expect(statSync(join(dir, 'weights.bin')).size).toBe(4 * params);
    expect(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).format).toBe('layers-model');

    const { model: restored, metadata } = await importModel(dir);
    expect(metadata).toEqual({ experiment: name, inputShape: [64, 64, 3] });
    expect(restored.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
    const x = tf.randomNormal([2, 64, 64, 3], 0, 1, 'float32', 9);
    const a = model.predict(x) as tf.Tensor;
    const b = restored.predict(x) as tf.Tensor;
    expect(b.shape).toEqual([2, 100]);
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
    tf.dispose([x, a, b]);
    model.dispose();
    restored.dispose();
  });
});
