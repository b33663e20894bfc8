import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatasetEntry } from '@tessera/core';
import { describe, expect, it } from 'vitest';
import { builtinRegistries } from '@tessera/builtins';
import { runCli } from '../test-helpers.ts';

/*
 * The experiment API's order, through the real commands: load -> validate (every template
 * instance) -> build the model for the shape the dataset entry declares -> only then create the
 * data. A `spy` dataset (the synthetic one, counted) shows which steps touched the data.
 */

/** The spy's images: 10x15, which patches of 5 fit (CIFAR's 32x32, the old guess, would not build). */
const SPY_IMAGE_SHAPE = [10, 15, 3];

/**
 * The built-in registries plus `spy`: a dataset of its own shape (the synthetic one at 10x15, with
 * no `image_shape` param to guess from), recording each describe and create.
 */
function spyRegistries() {
  const registries = builtinRegistries();
  const synthetic = registries.datasets.get('synthetic');
  const { image_shape: _fixed, ...properties } = synthetic.params.properties as Record<string, unknown>;
  const calls = { described: [] as number[][], created: 0 };
  const spy: DatasetEntry = {
    type: 'spy',
    description: 'the synthetic dataset at 10x15, counted',
    params: { ...synthetic.params, properties },
    describe(params, ctx) {
      const shape = synthetic.describe({ ...params, image_shape: SPY_IMAGE_SHAPE }, ctx);
      calls.described.push(shape.inputShape);
      return shape;
    },
    async create(params, ctx) {
      calls.created++;
      return synthetic.create({ ...params, image_shape: SPY_IMAGE_SHAPE }, ctx);
    },
  };
  registries.datasets.register(spy);
  return { registries: () => registries, calls };
}

const experiment = (denseKey: 'units' | 'unit') =>
  [
    'name: flow',
    'seed: 1',
    'backend: cpu',
    'data:',
    '  type: spy',
    '  num_classes: 3',
    '  train_size: 32',
    '  test_size: 8',
    '  transforms:',
    '    - {type: normalize}',
    'model:',
    '  blocks:',
    '    mlp:',
    '      params: {width: 8}',
    '      layers:',
    `        - {type: dense, ${denseKey}: "\${width}", activation: gelu}`,
    '  layers:',
    '    - {type: patches, size: 5}',
    '    - {type: call, block: mlp, args: {width: 6}}',
    '    - {type: global_average_pooling, axis: 1}',
    '    - {type: dense, units: 3, name: logits}',
    'train:',
    '  epochs: 1',
    '  batch_size: 16',
    '  optimizer: {type: adam, learning_rate: 0.01}',
    '  loss: {type: sparse_categorical_crossentropy, from_logits: true}',
    '',
  ].join('\n');

function workspace(denseKey: 'units' | 'unit') {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-flow-'));
  writeFileSync(join(dir, 'flow.yaml'), experiment(denseKey));
  return dir;
}

/** `[null, 10, 15, 3]`: the input layer's shape in a saved model.json. */
function savedInputShape(modelJson: string): unknown {
  const topology = JSON.parse(readFileSync(modelJson, 'utf8')).modelTopology;
  return topology.config.layers[0].config.batch_input_shape;
}

describe('the experiment flow', () => {
  it.each([
    ['run', ['--runs-dir', 'runs']],
    ['validate', []],
    ['summary', []],
    ['export', ['--init', '--out', 'exported']],
  ])('exp %s reports a template typo, located, exit 2, before any dataset is created', async (command, args) => {
    const cwd = workspace('unit');
    const { registries, calls } = spyRegistries();
    const result = await runCli([command, 'flow.yaml', ...args], { cwd, registries });
    expect(result.code, result.stderr).toBe(2);
    const first = result.stderr.split('\n')[0]!;
    expect(first.startsWith(
      'flow.yaml:16:25 model.blocks.mlp.layers[0].unit: unknown key "unit" for block type "dense" ' +
        '(in the instance of block "mlp" called at model.layers[1]); did you mean "units"? (valid keys: type, name, units, ',
    ), first).toBe(true);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(calls.created).toBe(0);
    expect(existsSync(join(cwd, 'runs'))).toBe(false);
  });

  it('validate, summary, export and run build the model for the shape the dataset entry declares', async () => {
    const cwd = workspace('units');
    const { registries, calls } = spyRegistries();

    expect(await runCli(['validate', 'flow.yaml'], { cwd, registries })).toMatchObject({ code: 0, stdout: 'ok flow.yaml\n' });
    const summary = await runCli(['summary', 'flow.yaml', '--json'], { cwd, registries });
    expect(summary.code, summary.stderr).toBe(0);
    expect(JSON.parse(summary.stdout).inputShape).toEqual([null, 10, 15, 3]);
    expect(calls.created).toBe(0); // neither read any data

    const exported = await runCli(['export', 'flow.yaml', '--init', '--out', 'exported'], { cwd, registries });
    expect(exported.code, exported.stderr).toBe(0);
    expect(savedInputShape(join(cwd, 'exported', 'model.json'))).toEqual([null, 10, 15, 3]);

    const run = await runCli(['run', 'flow.yaml', '--runs-dir', 'runs'], { cwd, registries });
    expect(run.code, run.stderr).toBe(0);
    const [runId] = readdirSync(join(cwd, 'runs', 'flow'));
    expect(savedInputShape(join(cwd, 'runs', 'flow', runId!, 'artifacts', 'model', 'model.json'))).toEqual([null, 10, 15, 3]);

    expect(calls.created).toBe(2); // export (for the preprocessing state) and run
    expect(calls.described.length).toBeGreaterThanOrEqual(4);
    expect(new Set(calls.described.map((shape) => JSON.stringify(shape)))).toEqual(new Set(['[10,15,3]']));
  });
});
