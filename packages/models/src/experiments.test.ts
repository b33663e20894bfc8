import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel, createRegistries, loadExperiment, modelSummary, registerCombinators, type ModelConfig } from '@tessera/core';
import { registerModels } from './index.ts';

/*
 * The bundled reference experiments, built from their YAML files: the trainable parameter
 * counts are the Keras reference's (docs/reference.md, "Parameter counts"), and the
 * reference's quirks are really there.
 */

const registries = registerModels(registerCombinators(createRegistries()));
const experiment = (name: string) => fileURLToPath(new URL(`../../../experiments/${name}.yaml`, import.meta.url));

function build(name: string) {
  const loaded = loadExperiment(experiment(name));
  const config = loaded.config as { vars?: Record<string, unknown>; model: ModelConfig };
  return buildModel(config.model, { registries, inputShape: [64, 64, 3], seed: 42, locate: loaded.locate, vars: config.vars });
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('the reference experiments', () => {
  it.each([
    ['mixer', 242_788],
    ['fnet', 621_924],
    ['gmlp', 885_348],
  ])('%s has exactly the reference trainable parameter count', (name, count) => {
    const summary = modelSummary(build(name));
    expect(summary.trainableParams).toBe(count);
    expect(summary.nonTrainableParams).toBe(0);
    expect(summary.layers.at(-1)!.outputShape).toEqual([null, 100]);
  });

  it('mixer: each of the 4 blocks has ONE LayerNorm (epsilon 1e-6) applied twice', () => {
    const norms = build('mixer').layers.filter((l) => l.getClassName() === 'TesseraLayerNorm');
    expect(norms.map((l) => l.name)).toEqual(['block_1/norm', 'block_2/norm', 'block_3/norm', 'block_4/norm']);
    for (const norm of norms) {
      expect((norm as unknown as { inboundNodes: unknown[] }).inboundNodes).toHaveLength(2);
      expect(norm.getConfig().epsilon).toBe(1e-6);
    }
  });

  it('fnet: a [64, 256] position embedding and 2 LayerNorms per block, no weights in the Fourier mixing', () => {
    const model = build('fnet');
    expect(model.getLayer('position_embedding_1').getWeights()[0]!.shape).toEqual([64, 256]);
    expect(model.layers.filter((l) => l.getClassName() === 'TesseraLayerNorm')).toHaveLength(8);
    expect(model.getLayer('block_1/fourier_mixing/fourier_2d_1').countParams()).toBe(0);
  });

  it('gmlp: the spatial gate bias starts at ONES (bias_initializer in the YAML), every other bias at zeros', () => {
    const model = build('gmlp');
    const biases = model.weights.filter((w) => w.originalName.endsWith('/bias'));
    const gate = biases.filter((w) => w.originalName.includes('/spatial_gating/dense_'));
    expect(gate.map((w) => w.originalName)).toEqual([1, 2, 3, 4].map((i) => `block_${i}/gated_mlp/spatial_gating/dense_1/bias`));
    for (const w of gate) expect(new Set(w.read().dataSync())).toEqual(new Set([1]));
    for (const w of biases.filter((b) => !gate.includes(b))) expect(new Set(w.read().dataSync())).toEqual(new Set([0]));
    // The spatial dense mixes the 64 patches: kernel [64, 64].
    expect(gate.map((w) => model.getLayer(w.originalName.replace(/\/bias$/, '')).getWeights()[0]!.shape)).toEqual(Array(4).fill([64, 64]));
  });

  it('gmlp: the residual skip starts from the normalised input (the block\'s first LayerNorm)', () => {
    const add = build('gmlp').getLayer('block_1/gated_mlp/add_1') as unknown as {
      inboundNodes: { inboundLayers: tf.layers.Layer[] }[];
    };
    expect(add.inboundNodes[0]!.inboundLayers.map((l) => l.name)).toEqual(['block_1/norm', 'block_1/gated_mlp/dense_2']);
  });
});
