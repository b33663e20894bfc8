import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadExperiment } from '../config/index.ts';
import { ConfigError } from '../errors.ts';
import { createRegistries, type BlockEntry } from '../registry/kinds.ts';
import type { ModelConfig } from '../schema/types.ts';
import { buildModel, disposeModel } from './build.ts';
import { layerSeed } from '../random/index.ts';
import { registerCombinators } from './combinators.ts';
import { modelSummary, formatSummary } from './summary.ts';

/* The builder is tested with tfjs' own layers as stand-in primitives (core never imports models). */

const dense: BlockEntry = {
  type: 'dense',
  description: 'test dense',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['units'],
    properties: { units: { type: 'integer', minimum: 1 }, kernel_initializer: { enum: ['ones', 'glorot_uniform'] } },
  },
  create: (p, ctx) =>
    tf.layers.dense({
      units: p.units,
      name: ctx.name,
      kernelInitializer: p.kernel_initializer === 'ones' ? 'ones' : tf.initializers.glorotUniform({ seed: ctx.seed }),
    }),
};
const layerNorm: BlockEntry = {
  type: 'layer_norm',
  description: 'test layer norm',
  params: { type: 'object', additionalProperties: false, properties: { epsilon: { type: 'number' } } },
  create: (p, ctx) => tf.layers.layerNormalization({ name: ctx.name, epsilon: p.epsilon ?? 1e-3 }),
};

const registries = registerCombinators(createRegistries());
registries.blocks.register(dense).register(layerNorm);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const build = (spec: ModelConfig, inputShape = [3], vars: Record<string, unknown> = {}) =>
  buildModel(spec, { registries, inputShape, seed: 1, vars });

/** Builds from a YAML file so that errors are located by the real loader. */
function buildFromYaml(text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-graph-'));
  const file = join(dir, 'exp.yaml');
  writeFileSync(file, text);
  const loaded = loadExperiment(file);
  const config = loaded.config as { vars?: Record<string, unknown>; model: ModelConfig };
  return () => buildModel(config.model, { registries, inputShape: [3], seed: 1, vars: config.vars, locate: loaded.locate });
}

function errorOf(f: () => unknown): ConfigError {
  try {
    f();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('buildModel', () => {
  it('names layers by scope: repeat instances, calls, containers and auto-numbered leaves', () => {
    const model = build({
      vars: { width: 4 },
      blocks: {
        mlp: {
          params: { hidden: 2 },
          layers: [
            { type: 'dense', units: '${hidden * 3}' },
            { type: 'residual', name: 'mixing', layers: [{ type: 'dense', units: '${hidden * 3}' }] },
          ],
        },
      },
      layers: [
        { type: 'dense', units: 4, name: 'stem' },
        { type: 'repeat', times: 2, layers: [{ type: 'call', block: 'mlp', args: { hidden: 5 } }, { type: 'dense', units: 4 }] },
        { type: 'dense', units: 2 },
      ],
    } as ModelConfig, [3], {});
    expect(model.layers.map((l) => l.name)).toEqual([
      'input',
      'stem',
      'block_1/dense_1',
      'block_1/mixing/dense_1',
      'block_1/mixing/add_1',
      'block_1/dense_2',
      'block_2/dense_1',
      'block_2/mixing/dense_1',
      'block_2/mixing/add_1',
      'block_2/dense_2',
      'dense_1',
    ]);
    // Call args beat the definition's defaults: hidden 5 -> 15 units.
    expect(model.getLayer('block_1/dense_1').outputShape).toEqual([null, 15]);
    // Weight names carry the scope.
    expect(model.getLayer('block_2/mixing/dense_1').weights[0]!.originalName).toBe('block_2/mixing/dense_1/kernel');
  });

  it('evaluates templates with the scope top vars < model.vars < params < call args', () => {
    const model = build(
      {
        vars: { b: 20 },
        blocks: { blk: { params: { c: 300, d: 0 }, layers: [{ type: 'dense', units: '${a + b + c + d}' }] } },
        layers: [{ type: 'call', block: 'blk', args: { d: 4000 } }],
      } as unknown as ModelConfig,
      [3],
      { a: 1, b: 2, d: 5 },
    );
    expect(model.outputs[0]!.shape).toEqual([null, 4321]);
  });

  it('shares one layer between the uses of a `shared` module, and gives each block instance its own', () => {
    const model = build({
      blocks: {
        blk: {
          layers: [
            { type: 'residual', layers: [{ type: 'shared', name: 'norm', layer: { type: 'layer_norm', epsilon: 1e-6 } }, { type: 'dense', units: 3 }] },
            { type: 'residual', layers: [{ type: 'shared', name: 'norm' }, { type: 'dense', units: 3 }] },
          ],
        },
      },
      layers: [{ type: 'repeat', times: 2, layers: [{ type: 'call', block: 'blk' }] }],
    });
    const norms = model.layers.filter((l) => l.name.endsWith('/norm'));
    expect(norms.map((l) => l.name)).toEqual(['block_1/norm', 'block_2/norm']);
    expect(norms.map((l) => l.inboundNodes.length)).toEqual([2, 2]);
    // 2 instances x (LN 6 + 2 dense x 12) params.
    expect(modelSummary(model).trainableParams).toBe(2 * (6 + 2 * 12));
    expect(formatSummary(modelSummary(model))).toMatch(/block_1\/norm \(LayerNormalization\) x2 +\(None, 3\) +6/);
  });

  it('adds the skip to f(x): the input by default, or a named earlier tensor', () => {
    const ones = { type: 'dense', units: 3, kernel_initializer: 'ones' };
    const model = build({
      layers: [
        { ...ones, name: 'n' },
        { type: 'residual', skip: 'n', layers: [ones] },
        { type: 'residual', layers: [ones] },
      ],
    });
    const x = tf.tensor2d([[1, 2, 3]]);
    // n = 6 each; r1 = n + dense(n) = 6 + 18 = 24 each; r2 = 24 + 72 = 96.
    expect(Array.from((model.predict(x) as tf.Tensor).dataSync())).toEqual([96, 96, 96]);
  });

  it('merges branches by multiply and concat; an empty branch is the identity', () => {
    const ones = { type: 'dense', units: 3, kernel_initializer: 'ones' };
    const model = build({
      layers: [
        { type: 'branch', merge: 'multiply', branches: [[], [ones]] },
        { type: 'branch', merge: 'concat', branches: [[], [{ type: 'dense', units: 2 }]] },
      ],
    });
    const y = model.predict(tf.tensor2d([[1, 2, 3]])) as tf.Tensor;
    expect(y.shape).toEqual([1, 5]);
    expect(Array.from(y.dataSync()).slice(0, 3)).toEqual([6, 12, 18]);
  });

  it('derives each layer seed from the run seed and the layer name', () => {
    expect(layerSeed(1, 'block_1/dense_1')).toBe(layerSeed(1, 'block_1/dense_1'));
    expect(layerSeed(1, 'block_1/dense_1')).not.toBe(layerSeed(1, 'block_2/dense_1'));
    expect(layerSeed(2, 'block_1/dense_1')).not.toBe(layerSeed(1, 'block_1/dense_1'));
    const weights = (seed: number) =>
      Array.from(buildModel({ layers: [{ type: 'dense', units: 2 }] }, { registries, inputShape: [3], seed }).getWeights()[0]!.dataSync());
    expect(weights(7)).toEqual(weights(7));
    expect(weights(7)).not.toEqual(weights(8));
  });
});

describe('buildModel errors', () => {
  it('locates a bad parameter inside a template at its line, naming the instance', () => {
    const run = buildFromYaml(
      [
        'model:',
        '  blocks:',
        '    blk:',
        '      params: {width: 4}',
        '      layers:',
        '        - {type: dense, units: "${width}x"}',
        '  layers:',
        '    - {type: repeat, times: 2, layers: [{type: call, block: blk}]}',
        '',
      ].join('\n'),
    );
    const error = errorOf(run);
    expect(error.render()).toMatch(
      /exp\.yaml:6:32 model\.blocks\.blk\.layers\[0\]\.units: expected an integer, got string "4x" \(in the instance of block "blk" called at model\.layers\[0\]\.layers\[0\]\); computed by "\$\{width\}x" where width = 4$/,
    );
  });

  it('suggests the closest type, parameter, block or argument', () => {
    expect(errorOf(() => build({ layers: [{ type: 'dens', units: 3 }] })).message).toMatch(
      /model\.layers\[0\]\.type: unknown block type "dens"; did you mean "dense"\?/,
    );
    expect(errorOf(() => build({ layers: [{ type: 'dense', unit: 3 }] })).message).toMatch(
      /model\.layers\[0\]\.unit: unknown key "unit" for block type "dense"; did you mean "units"\?/,
    );
    expect(errorOf(() => build({ blocks: { mlp: { layers: [] } }, layers: [{ type: 'call', block: 'mpl' }] })).message).toMatch(
      /model\.layers\[0\]\.block: no block definition "mpl" under model\.blocks; did you mean "mlp"\?/,
    );
    expect(
      errorOf(() => build({ blocks: { mlp: { params: { width: 1 }, layers: [] } }, layers: [{ type: 'call', block: 'mlp', args: { widht: 2 } }] })).message,
    ).toMatch(/model\.layers\[0\]\.args\.widht: block "mlp" has no parameter "widht"; did you mean "width"\?/);
    expect(errorOf(() => build({ layers: [{ type: 'residual', skip: 'nrom', layers: [] }] })).message).toMatch(/no earlier layer named "nrom"/);
  });

  it('refuses a block that calls itself, a shared module used before its definition, and duplicate names', () => {
    expect(errorOf(() => build({ blocks: { a: { layers: [{ type: 'call', block: 'a' }] } }, layers: [{ type: 'call', block: 'a' }] })).message).toMatch(
      /block "a" calls itself \(a -> a\)/,
    );
    expect(errorOf(() => build({ layers: [{ type: 'shared', name: 'norm' }] })).message).toMatch(/used before it is defined/);
    expect(errorOf(() => build({ layers: [{ type: 'dense', units: 3, name: 'x' }, { type: 'dense', units: 3, name: 'x' }] })).message).toMatch(
      /model\.layers\[1\]\.name: a layer named "x" already exists/,
    );
  });

  it('reports a shape mismatch with the shapes involved', () => {
    const error = errorOf(() => build({ layers: [{ type: 'residual', layers: [{ type: 'dense', units: 2 }] }] }));
    expect(error.message).toMatch(/model\.layers\[0\]: cannot apply "residual_1\/add_1" to an input of shape \[batch, 3\] and \[batch, 2\]/);
  });
});

describe('disposal', () => {
  const sharedNorm: ModelConfig = {
    layers: [
      { type: 'residual', layers: [{ type: 'shared', name: 'norm', layer: { type: 'layer_norm' } }, { type: 'dense', units: 3 }] },
      { type: 'residual', layers: [{ type: 'shared', name: 'norm' }, { type: 'dense', units: 3 }] },
    ],
  };

  it('disposeModel frees every weight, those of a shared module applied twice too (model.dispose() keeps them)', () => {
    const before = tf.memory().numTensors;
    const model = build(sharedNorm);
    expect(tf.memory().numTensors - before).toBe(2 + 2 * 2); // gamma, beta; kernel and bias twice
    disposeModel(model);
    expect(tf.memory().numTensors).toBe(before);
    build(sharedNorm).dispose();
    expect(tf.memory().numTensors - before).toBe(2); // the shared norm's gamma and beta
  });

  it('a build that fails half way frees the weights it made', () => {
    const before = tf.memory().numTensors;
    errorOf(() => build({ layers: [{ type: 'dense', units: 4 }, { type: 'residual', layers: [{ type: 'dense', units: 2 }] }] }));
    expect(tf.memory().numTensors).toBe(before);
  });
});
