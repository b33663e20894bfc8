import { readFileSync, writeFileSync } from 'node:fs';
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

/*
 * ConvMixer and ViT-small against the Keras examples (bench/keras_models.py's MORE_MODELS) on
 * real CIFAR images: same weights (loaded by position from order.json), same input, outputs
 * within 1e-4 of the largest value. ConvMixer runs in training mode first (batch statistics,
 * and the moving statistics move once by momentum 0.99), then at inference with the moved ones.
 */
interface MoreReference {
  params: number;
  trainable: number;
  logits: number[][];
  training?: number[][];
  moving_mean?: number[];
  moving_variance?: number[];
}

/** The fixture's real images [n, 32, 32, 3] uint8, nearest-upsampled to `size` and scaled to [0, 1] for the ViT. */
function realImages(size: number): tf.Tensor4D {
  const bytes = (reference as unknown as { real_images: number[] }).real_images;
  const n = bytes.length / (32 * 32 * 3);
  if (size === 32) return tf.tensor4d(Float32Array.from(bytes), [n, 32, 32, 3]);
  const out = new Float32Array(n * size * size * 3);
  let at = 0;
  for (let i = 0; i < n; i++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++)
        for (let c = 0; c < 3; c++) out[at++] = bytes[((i * 32 + Math.floor((y * 32) / size)) * 32 + Math.floor((x * 32) / size)) * 3 + c]! / 255;
  return tf.tensor4d(out, [n, size, size, 3]);
}

/**
 * Softmax outputs of an untrained model are all near 1/classes, so compare their logarithms
 * centred per example (the logits up to a constant): an error in the logits shows at full scale.
 */
function centredLog(rows: number[][]): number[][] {
  return rows.map((row) => {
    const logs = row.map(Math.log);
    const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
    return logs.map((v) => v - mean);
  });
}

function worstRelative(got: number[][] | number[], want: number[][] | number[]): number {
  const g = (got as number[]).flat ? (got as number[][]).flat() : (got as number[]);
  const w = (want as number[][]).flat();
  const scale = Math.max(...w.map(Math.abs));
  return Math.max(...g.map((v, i) => Math.abs(v - w[i]!))) / scale;
}

describe('ConvMixer and ViT compute what the Keras examples compute (real images)', () => {
  it.each([
    ['convmixer', 32],
    ['vit-small', 72],
  ] as const)('%s: same outputs as Keras with the same weights', async (name, size) => {
    const loaded = loadExperiment(fileURLToPath(new URL(`../../../experiments/${name}.yaml`, import.meta.url)));
    const config = loaded.config as { vars?: Record<string, unknown>; model: ModelConfig };
    const model = buildModel(config.model, { registries, inputShape: [size, size, 3], seed: 42, vars: config.vars });
    const exportTo = process.env.TESSERA_KERAS_EXPORT;
    if (exportTo) {
      await exportModel(model, join(exportTo, name));
      // Keras' weight order: layer by layer, each layer's trainable weights then its non-trainable ones.
      const order = model.layers.flatMap((layer) => layer.weights.map((w) => w.originalName));
      writeFileSync(join(exportTo, name, 'order.json'), JSON.stringify(order));
    }
    const want = (reference as unknown as Record<string, MoreReference>)[name]!;
    const trainable = model.trainableWeights.reduce((n, w) => n + w.shape.reduce((a, b) => a! * b!, 1)!, 0);
    expect([model.countParams(), trainable]).toEqual([want.params, want.trainable]);
    const x = realImages(size);
    if (want.training) {
      const training = model.apply(x, { training: true }) as tf.Tensor;
      expect(worstRelative(centredLog(training.arraySync() as number[][]), centredLog(want.training))).toBeLessThan(1e-4);
      const norm = model.layers.find((layer) => layer.getClassName() === 'TesseraBatchNorm')!;
      const [, , movingMean, movingVariance] = norm.getWeights();
      expect(worstRelative(Array.from(movingMean!.dataSync()), [want.moving_mean!])).toBeLessThan(1e-4);
      expect(worstRelative(Array.from(movingVariance!.dataSync()), [want.moving_variance!])).toBeLessThan(1e-4);
    }
    const predicted = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    const [got, logits] = want.training ? [centredLog(predicted), centredLog(want.logits)] : [predicted, want.logits];
    if (process.env.TESSERA_SHOW_ERRORS) console.log(name, 'worst relative error', worstRelative(got, logits), 'outputs', got[0]!.slice(0, 4));
    expect(worstRelative(got, logits)).toBeLessThan(1e-4);
    // Not degenerate: the images get different outputs.
    expect(got[0]).not.toEqual(got[1]);
    model.dispose();
  });
});
