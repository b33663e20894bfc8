import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRegistries, defaultsOf, registerCombinators, validateExperimentPart, type BlockEntry } from '@tessera/core';
import { registerModels } from '../index.ts';

/*
 * One suite over EVERY registered primitive: it builds, runs forward on a tiny input, its output
 * shape is its computeOutputShape, every trainable weight (and the input) gets a finite gradient,
 * its config survives a save/load round trip with identical outputs, and 3 steps leak no tensor.
 * A primitive registered without a case here fails the first test.
 */

interface Case {
  params: Record<string, unknown>;
  inputShape: number[];
}

const CASES: Record<string, Case[]> = {
  patches: [{ params: { size: 2 }, inputShape: [2, 4, 6, 3] }],
  dense: [
    { params: { units: 3, activation: 'gelu' }, inputShape: [2, 4, 5] },
    { params: { units: 3, axis: 1, bias_initializer: 'ones', kernel_initializer: 'he_normal' }, inputShape: [2, 4, 5] },
  ],
  layer_norm: [
    { params: { epsilon: 1e-6 }, inputShape: [2, 4, 5] },
    { params: { axis: 1, epsilon: 1e-3, center: false }, inputShape: [2, 4, 5] },
  ],
  dropout: [{ params: { rate: 0.5 }, inputShape: [2, 4, 5] }],
  activation: [
    { params: { activation: 'gelu' }, inputShape: [2, 4, 5] },
    { params: { activation: 'gelu_tanh' }, inputShape: [2, 3] },
    { params: { activation: 'swish' }, inputShape: [2, 3] },
  ],
  transpose: [{ params: { perm: [0, 2, 1] }, inputShape: [2, 4, 5] }],
  fourier_2d: [{ params: {}, inputShape: [2, 4, 6] }],
  position_embedding: [
    { params: {}, inputShape: [2, 4, 5] },
    { params: { initializer: 'random_uniform' }, inputShape: [2, 4, 5] },
  ],
  split: [
    { params: { chunks: 2, index: 1 }, inputShape: [2, 4, 6] },
    { params: { chunks: 2, index: 0, axis: 1 }, inputShape: [2, 4, 6] },
  ],
  global_average_pooling: [
    { params: { axis: 1 }, inputShape: [2, 4, 5] },
    { params: { axis: [1, 2] }, inputShape: [2, 4, 5, 3] },
  ],
  rescaling: [{ params: { scale: 0.5, offset: -1 }, inputShape: [2, 4, 4, 3] }],
  conv2d: [
    { params: { filters: 4, kernel_size: 3, activation: 'gelu' }, inputShape: [2, 6, 6, 3] },
    { params: { filters: 4, kernel_size: 2, strides: 2, padding: 'same' }, inputShape: [2, 5, 5, 3] },
    { params: { filters: 6, kernel_size: [3, 2], groups: 3, padding: 'same', dilation: 2 }, inputShape: [2, 6, 6, 3] },
    { params: { filters: 4, kernel_size: 3, groups: 2, use_bias: false }, inputShape: [2, 5, 5, 4] },
  ],
  batch_norm: [
    { params: {}, inputShape: [2, 4, 4, 3] },
    { params: { axis: 1, center: false, momentum: 0.9 }, inputShape: [3, 4, 5] },
  ],
  max_pool_2d: [{ params: { pool_size: 2 }, inputShape: [2, 4, 6, 3] }],
  average_pool_2d: [{ params: { pool_size: 3, strides: 2, padding: 'same' }, inputShape: [2, 5, 5, 3] }],
  multi_head_attention: [
    { params: { num_heads: 2, key_dim: 3 }, inputShape: [2, 4, 5] },
    { params: { num_heads: 3, key_dim: 2, value_dim: 4, dropout: 0.2, use_bias: false }, inputShape: [2, 4, 5] },
  ],
  class_token: [{ params: { initializer: 'random_uniform' }, inputShape: [2, 4, 5] }],
  flatten: [{ params: {}, inputShape: [2, 4, 5, 3] }],
  reshape: [{ params: { target_shape: [-1, 6] }, inputShape: [2, 4, 3] }],
  layer_scale: [{ params: { init_value: 0.1 }, inputShape: [2, 4, 5] }],
  drop_path: [{ params: { rate: 0.5 }, inputShape: [8, 4, 5] }],
};

const registries = registerModels(createRegistries());
const entries = registries.blocks.list();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('every registered primitive', () => {
  it('has a test case', () => {
    expect(entries.map((e) => e.type).filter((type) => !CASES[type])).toEqual([]);
  });

  const all = entries.flatMap((entry) => (CASES[entry.type] ?? []).map((c, i) => [`${entry.type} #${i + 1}`, entry, c] as const));

  describe.each(all)('%s', (_label, entry: BlockEntry, c: Case) => {
    const make = () => entry.create(c.params, { name: `probe_${entry.type}`, seed: 7 });
    const input = () => tf.randomNormal(c.inputShape, 0, 1, 'float32', 3);

    it('runs forward with the shape computeOutputShape promises', () => {
      const layer = make();
      const x = input();
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      expect(y.shape).toEqual(layer.computeOutputShape(c.inputShape));
      expect(tf.all(tf.isFinite(y)).dataSync()[0]).toBe(1);
      tf.dispose([x, y]);
    });

    it('gives a finite, non-zero gradient to the input and to every trainable weight; no leak over 3 steps', () => {
      const layer = make();
      const x = tf.variable(input());
      layer.apply(x); // builds the weights
      const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const probe = tf.randomNormal(layer.computeOutputShape(c.inputShape) as number[], 0, 1, 'float32', 5);
      const step = () =>
        tf.tidy(() => {
          const { grads } = tf.variableGrads(
            () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, probe)) as tf.Scalar,
            [x, ...weights],
          );
          return Object.values(grads).map((g) => [tf.all(tf.isFinite(g)).dataSync()[0], tf.max(tf.abs(g)).dataSync()[0]!]);
        });
      const first = step();
      expect(first).toHaveLength(1 + weights.length);
      for (const [finite, largest] of first) {
        expect(finite).toBe(1);
        expect(largest).toBeGreaterThan(0);
      }
      const before = tf.memory().numTensors;
      step();
      step();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, probe]);
    });

    it('survives a save/load round trip (config and outputs)', async () => {
      const inputs = tf.input({ shape: c.inputShape.slice(1) });
      const model = tf.model({ inputs, outputs: make().apply(inputs) as tf.SymbolicTensor });
      const restored = await tf.models.modelFromJSON(JSON.parse(JSON.stringify(model.toJSON(null, false))));
      restored.setWeights(model.getWeights());
      expect(restored.layers[1]!.getConfig()).toEqual(model.layers[1]!.getConfig());
      expect(restored.layers[1]!.getClassName()).toBe(model.layers[1]!.getClassName());
      const x = input();
      const a = model.predict(x) as tf.Tensor;
      const b = restored.predict(x) as tf.Tensor;
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
      model.dispose();
      restored.dispose();
    });
  });
});

/*
 * One source of truth per parameter (core's registry/params.ts): a default is written once, in
 * the entry's schema. The validator writes it into the config (ajv useDefaults), and a layer
 * created without it falls back to the same value.
 */
describe("every primitive's documented defaults are its runtime defaults", () => {
  const camel = (key: string) => key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
  const schemaOf = (entry: BlockEntry) => entry.params as { properties: Record<string, unknown>; required?: string[] };
  const requiredOnly = (entry: BlockEntry) =>
    Object.fromEntries(Object.entries(CASES[entry.type]![0]!.params).filter(([key]) => schemaOf(entry).required?.includes(key)));
  const config = (entry: BlockEntry, params: Record<string, unknown>) => {
    const { name: _name, ...rest } = entry.create(params, { name: 'probe', seed: 7 }).getConfig();
    return rest;
  };

  it.each(entries.map((entry) => [entry.type, entry] as const))('%s', (_type, entry) => {
    const defaults = defaultsOf(schemaOf(entry));
    const bare = config(entry, requiredOnly(entry));
    // The layer's own fallbacks equal the schema's defaults ...
    for (const [key, value] of Object.entries(defaults)) expect([key, bare[camel(key)]]).toEqual([key, value]);
    // ... so a layer given the validator's filled-in params is the same layer.
    expect(config(entry, { ...defaults, ...requiredOnly(entry) })).toEqual(bare);
  });

  it('the validator writes every default into the config it returns (what is recorded is what ran)', () => {
    const all = registerModels(registerCombinators(createRegistries()));
    const layers = entries.map((entry) => ({ type: entry.type, ...requiredOnly(entry) }));
    const nowhere = { config: {}, locate: () => undefined, locateKey: () => undefined };
    expect(validateExperimentPart('layers', layers, ['model', 'layers'], nowhere, all)).toEqual([]);
    for (const [i, entry] of entries.entries()) expect(layers[i]).toEqual({ type: entry.type, ...requiredOnly(entry), ...defaultsOf(schemaOf(entry)) });
  });
});
