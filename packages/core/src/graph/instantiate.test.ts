import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { registerEngine } from '../engine/register.ts';
import { ConfigError, configErrorsOf, isConfigError } from '../errors.ts';
import { loadValidatedExperiment } from '../experiment/experiment.ts';
import { createRegistries, type BlockEntry } from '../registry/kinds.ts';
import { registerCombinators } from './combinators.ts';
import { instanceContext, instantiateModel } from './instantiate.ts';

/* Stand-in entries (core never imports models or data): a dense block and a dataset that is never created. */

const dense: BlockEntry = {
  type: 'dense',
  description: 'test dense',
  params: { type: 'object', additionalProperties: false, required: ['units'], properties: { units: { type: 'integer', minimum: 1 } } },
  create: (p, ctx) => tf.layers.dense({ units: p.units, name: ctx.name }),
};
const registries = registerCombinators(createRegistries());
registries.blocks.register(dense);
registerEngine(registries);
registries.datasets.register({
  type: 'images',
  description: 'stand-in dataset',
  params: { type: 'object', additionalProperties: false, properties: {} },
  describe: () => ({ inputShape: [4], numClasses: 2 }),
  create: () => {
    throw new Error('no data may be read while an experiment is checked');
  },
});

/** An experiment whose model is `layers` (YAML flow lines), with `blocks` as its templates. */
function experimentFile(layers: string[], blocks: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-instantiate-'));
  const file = join(dir, 'exp.yaml');
  writeFileSync(
    file,
    [
      'data: {type: images}',
      'train: {epochs: 1, batch_size: 2, optimizer: {type: adam}}',
      'model:',
      ...(blocks.length ? ['  blocks:', ...blocks.map((line) => `    ${line}`)] : []),
      '  layers:',
      ...layers.map((line) => `    - ${line}`),
      '',
    ].join('\n'),
  );
  return file;
}

function errorsOf(file: string): ConfigError[] {
  try {
    loadValidatedExperiment(file, registries);
  } catch (error) {
    if (isConfigError(error)) return configErrorsOf(error);
    throw error;
  }
  throw new Error('expected ConfigError(s)');
}

describe('one mistake, one wording', () => {
  const mistakes = [
    ['an unknown key', '{type: dense, unit: 2}'],
    ['a value out of range', '{type: dense, units: 0}'],
    ['a wrong type', '{type: dense, units: "2x"}'],
    ['an unknown block type', '{type: dens, units: 2}'],
    ['a missing key', '{type: dense}'],
  ] as const;

  it.each(mistakes)('%s reads the same in model.layers (schema) and in a template instance', (_, node) => {
    const [atSchema] = errorsOf(experimentFile([node, '{type: dense, units: 2}']));
    const [inTemplate] = errorsOf(experimentFile(['{type: call, block: blk}', '{type: dense, units: 2}'], ['blk:', `  layers: [${node}]`]));
    expect(atSchema!.path.slice(0, 3)).toEqual(['model', 'layers', 0]);
    expect(inTemplate!.path.slice(0, 5)).toEqual(['model', 'blocks', 'blk', 'layers', 0]);
    expect(atSchema!.path.slice(3)).toEqual(inTemplate!.path.slice(5));
    // The same sentence and hint; the template's says which instance it was found in.
    const context = instanceContext([{ block: 'blk', at: ['model', 'layers', 0] }]);
    expect(context).toBe(' (in the instance of block "blk" called at model.layers[0])');
    expect(inTemplate!.detail).toBe(`${atSchema!.detail}${context}`);
    expect(inTemplate!.hint).toBe(atSchema!.hint);
    expect(inTemplate!.location?.line).toBe(6); // the template's line, not the call's
  });
});

describe('instantiateModel', () => {
  it('checks every instance with its own arguments, and each call site separately', () => {
    const file = experimentFile(
      ['{type: call, block: blk, args: {n: 2}}', '{type: call, block: blk, args: {n: -1}}'],
      ['blk:', '  params: {n: 1}', '  layers: [{type: dense, units: "${n}"}]'],
    );
    const errors = errorsOf(file);
    expect(errors.map((e) => e.render(join(file, '..')))).toEqual([
      'exp.yaml:7:37 model.blocks.blk.layers[0].units: expected a value >= 1, got -1 (in the instance of block "blk" called at model.layers[1]); ' +
        'computed by "${n}" where n = -1',
    ]);
  });

  it('evaluates instances without building anything: the plan holds each call\'s layers', () => {
    const before = tf.memory().numTensors;
    const plan = instantiateModel(
      {
        blocks: { blk: { params: { n: 1 }, layers: [{ type: 'dense', units: '${n * 3}' }] } },
        layers: [{ type: 'repeat', times: 2, layers: [{ type: 'call', block: 'blk', args: { n: 2 } }] }],
      },
      { registries },
    );
    const call = (plan.model.layers[0]!.layers as object[])[0]!;
    expect(plan.instanceOf(call)).toEqual({ block: 'blk', layers: [{ type: 'dense', units: 6 }] });
    expect(tf.memory().numTensors).toBe(before);
  });
});
