import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.ts';
import { loadExperiment } from './load.ts';

/** Writes `files` (relative path -> text) into a fresh directory and returns its path. */
function tree(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-config-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function loadError(file: string, overrides: string[] = []): ConfigError {
  try {
    loadExperiment(file, { overrides });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('extends', () => {
  const dir = tree({
    'base/data.yaml': 'seed: 1\ndata:\n  type: cifar100\n  transforms: [{type: normalize}, {type: resize}]\n  validation_split: 0.1\n',
    'base/train.yaml': 'seed: 2\ntrain:\n  epochs: 50\n  optimizer: {type: adamw, learning_rate: 0.001}\n',
    'child.yaml': [
      'extends: [base/data.yaml, base/train.yaml]',
      'data:',
      '  transforms: [{type: normalize}]',
      'train:',
      '  optimizer: {learning_rate: 0.01}',
      '',
    ].join('\n'),
  });

  it('deep-merges bases in order, then the file: maps merge, lists and scalars replace', () => {
    const loaded = loadExperiment(join(dir, 'child.yaml'));
    expect(loaded.config).toEqual({
      seed: 2, // the later base wins
      data: { type: 'cifar100', transforms: [{ type: 'normalize' }], validation_split: 0.1 }, // the list is replaced whole
      train: { epochs: 50, optimizer: { type: 'adamw', learning_rate: 0.01 } }, // the map is merged
    });
    expect(loaded.files).toEqual([join(dir, 'base/data.yaml'), join(dir, 'base/train.yaml'), join(dir, 'child.yaml')]);
  });

  it('locates each value in the file it came from', () => {
    const loaded = loadExperiment(join(dir, 'child.yaml'));
    expect(loaded.locate(['data', 'validation_split'])).toEqual({ file: join(dir, 'base/data.yaml'), line: 5, col: 21 });
    expect(loaded.locate(['data', 'transforms', 0, 'type'])).toEqual({ file: join(dir, 'child.yaml'), line: 3, col: 23 });
    expect(loaded.locate(['train', 'optimizer', 'type'])).toEqual({ file: join(dir, 'base/train.yaml'), line: 4, col: 21 });
    expect(loaded.locate(['train', 'optimizer', 'learning_rate'])).toEqual({ file: join(dir, 'child.yaml'), line: 5, col: 30 });
    expect(loaded.locateKey(['train', 'epochs'])).toEqual({ file: join(dir, 'base/train.yaml'), line: 3, col: 3 });
    // A path that does not exist falls back to its nearest ancestor.
    expect(loaded.locate(['train', 'optimizer', 'nope'])).toEqual({ file: join(dir, 'child.yaml'), line: 5, col: 14 });
  });

  it('reports a cycle at the extends entry that closes it', () => {
    const cyclic = tree({ 'a.yaml': 'extends: b.yaml\nseed: 1\n', 'b.yaml': 'seed: 2\nextends:\n  - a.yaml\n' });
    const error = loadError(join(cyclic, 'a.yaml'));
    expect(error.location).toEqual({ file: join(cyclic, 'b.yaml'), line: 3, col: 5 });
    expect(error.detail).toMatch(/^extends cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml$/);
  });

  it('reports a missing base with a did-you-mean', () => {
    const missing = tree({ 'base.yaml': 'seed: 1\n', 'child.yaml': 'extends: [bse.yaml]\n' });
    const error = loadError(join(missing, 'child.yaml'));
    expect(error.location).toEqual({ file: join(missing, 'child.yaml'), line: 1, col: 11 });
    expect(error.detail).toMatch(/^base file "bse.yaml" not found/);
    expect(error.hint).toMatch(/did you mean ".*base.yaml"\?/);
  });
});

describe('variables', () => {
  const dir = tree({
    'exp.yaml': [
      'vars:',
      '  num_patches: ${(image_size / patch_size) ** 2}', // used before it is defined: fine
      '  image_size: 64',
      '  patch_size: 8',
      'name: run_${image_size}px',
      'model:',
      '  vars: {dim: 256, hidden: "${dim * 4}", patch_size: 4}',
      '  layers:',
      '    - {type: patches, size: ${patch_size}}', // model.vars wins inside model
      '    - {type: dense, units: ${hidden // 2}, name: "dense_${num_patches}"}',
      '  blocks:',
      '    mixer_block:',
      '      params: {dim: ${dim}}',
      '      layers: [{type: dense, units: ${dim * tokens}}]',
      'train: {epochs: ${patch_size}}',
      '',
    ].join('\n'),
  });

  it('evaluates vars in any order, typed or interpolated, with model.vars nearest', () => {
    const { config, locate } = loadExperiment(join(dir, 'exp.yaml'));
    expect(config.vars).toEqual({ num_patches: 64, image_size: 64, patch_size: 8 });
    expect(config.name).toBe('run_64px');
    expect(config.model).toEqual({
      vars: { dim: 256, hidden: 1024, patch_size: 4 },
      layers: [
        { type: 'patches', size: 4 },
        { type: 'dense', units: 512, name: 'dense_64' },
      ],
      blocks: { mixer_block: { params: { dim: 256 }, layers: [{ type: 'dense', units: '${dim * tokens}' }] } },
    });
    expect(config.train).toEqual({ epochs: 8 });
    // Template strings are kept raw but still located.
    expect(locate(['model', 'blocks', 'mixer_block', 'layers', 0, 'units'])).toEqual({ file: join(dir, 'exp.yaml'), line: 14, col: 37 });
  });

  it('lets a model variable use the top-level variable it shadows', () => {
    const dir = tree({ 'x.yaml': 'vars: {dim: 64}\nmodel:\n  vars: {dim: ${dim * 2}}\n  layers: [{units: ${dim}}]\ntrain: {units: ${dim}}\n' });
    const { config } = loadExperiment(join(dir, 'x.yaml'));
    expect([config.model, config.train]).toEqual([{ vars: { dim: 128 }, layers: [{ units: 128 }] }, { units: 64 }]);
  });

  it('reports a cycle between variables', () => {
    const cyclic = tree({ 'x.yaml': 'vars:\n  a: ${b + 1}\n  b: ${c}\n  c: ${a}\nseed: ${a}\n' });
    const error = loadError(join(cyclic, 'x.yaml'));
    expect(error.render(cyclic)).toBe('x.yaml:2:6 vars.a: variable cycle: a -> b -> c -> a');
  });

  it('reports an unknown variable where the expression is written', () => {
    const unknown = tree({ 'x.yaml': 'vars: {width: 3}\nmodel:\n  layers: [{type: dense, units: ${widht * 2}}]\n' });
    expect(loadError(join(unknown, 'x.yaml')).render(unknown)).toBe(
      'x.yaml:3:33 model.layers[0].units: unknown variable "widht" in "${widht * 2}"; did you mean "width"?',
    );
  });
});

describe('overrides', () => {
  const dir = tree({
    'exp.yaml': 'vars: {dim: 8}\nmodel:\n  layers:\n    - {type: dense, units: ${dim}}\n    - {type: dropout, rate: 0.1}\ntrain: {epochs: 5}\n',
  });
  const file = join(dir, 'exp.yaml');

  it('parses values as YAML, indexes lists either way, and runs before evaluation', () => {
    const { config, locate } = loadExperiment(file, {
      overrides: ['train.epochs=3', 'model.layers[1].rate=0.5', 'model.layers.0.activation=gelu', 'vars.dim=${2 ** 5}', 'train.metrics=[accuracy, top5_accuracy]'],
    });
    expect(config.train).toEqual({ epochs: 3, metrics: ['accuracy', 'top5_accuracy'] });
    expect(config.model).toEqual({ layers: [{ type: 'dense', units: 32, activation: 'gelu' }, { type: 'dropout', rate: 0.5 }] });
    expect(locate(['train', 'epochs'])).toEqual({ file: '--set train.epochs=3', line: 1, col: 1 });
  });

  it('gives a did-you-mean for a key that almost exists; + adds it anyway', () => {
    const error = loadError(file, ['train.epoch=3']);
    expect(error.render()).toBe('"--set train.epoch=3" train.epoch: no such key to override; did you mean "epochs"? (to add a new key, write --set +train.epoch=...)');
    expect(loadExperiment(file, { overrides: ['+train.epoch=3'] }).config.train).toEqual({ epochs: 5, epoch: 3 });
  });

  it('+, ++ and ~ mean what they mean in Hydra: add a new key, add or set, delete', () => {
    expect(loadExperiment(file, { overrides: ['++train.epochs=7', '++train.seed=3'] }).config.train).toEqual({ epochs: 7, seed: 3 });
    expect(loadExperiment(file, { overrides: ['~train.epochs'] }).config.train).toEqual({});
    expect(loadExperiment(file, { overrides: ['~train.epochs=5'] }).config.train).toEqual({});
    expect(loadExperiment(file, { overrides: ['~model.layers.1'] }).config.model).toEqual({ layers: [{ type: 'dense', units: 8 }] });
    expect(loadError(file, ['+train.epochs=3']).render()).toBe(
      '"--set +train.epochs=3" train.epochs: cannot add: the key already exists (value 5); to change it write --set train.epochs=..., or --set ++train.epochs=... to set it either way',
    );
    expect(loadError(file, ['~train.epochs=4']).render()).toBe('"--set ~train.epochs=4" train.epochs: not deleted: its value is 5, not 4');
    expect(loadError(file, ['~train.epoch']).render()).toBe('"--set ~train.epoch" train.epoch: no such key to delete; did you mean "epochs"?');
    // Never the misleading `unknown key "+train"` of a prefix read as part of the key.
    expect(loadError(file, ['+++train.epochs=3']).render()).toBe(
      '"--set +++train.epochs=3" "+++" is not an override prefix; write KEY=VALUE to set, +KEY=VALUE to add, ++KEY=VALUE to add or set, ~KEY to delete (as in Hydra)',
    );
  });

  it('adds keys that are not close to any existing one', () => {
    expect(loadExperiment(file, { overrides: ['train.batch_size=64'] }).config.train).toEqual({ epochs: 5, batch_size: 64 });
  });

  it.each([
    ['model.layers[7].units=3', 'model.layers: index 7 is out of range; the list has 2 items'],
    ['train.epochs.x=3', 'train.epochs: is 5, so it has no key "x"'],
    ['train.epochs', 'expected KEY=VALUE, e.g. --set train.epochs=3'],
    ['train..epochs=3', 'malformed key "train..epochs"; write keys like model.layers[2].units or model.layers.2.units'],
    ['train.epochs=[1, 2', 'invalid YAML'],
    ['__proto__.x=1', 'the key "__proto__" is not allowed'],
    ['extends=[a.yaml]', 'extends cannot be overridden'],
  ])('locates a bad override %j to the argument', (argument, message) => {
    const error = loadError(file, [argument]);
    expect(error.location?.file).toBe(`--set ${argument}`);
    expect(error.render()).toContain(message);
  });
});

describe('reading files', () => {
  it('accepts a UTF-8 BOM and CRLF line ends, keeping exact positions', () => {
    const dir = tree({ 'x.yaml': '\uFEFFseed: 1\r\nvars:\r\n  a: 2\r\n' });
    const loaded = loadExperiment(join(dir, 'x.yaml'));
    expect(loaded.config).toEqual({ seed: 1, vars: { a: 2 } });
    expect(loaded.locate(['vars', 'a'])).toEqual({ file: join(dir, 'x.yaml'), line: 3, col: 6 });
  });

  it('refuses UTF-16 with a hint', () => {
    const dir = tree({ 'x.yaml': new Uint8Array([0xff, 0xfe, 0x73, 0x00]) });
    expect(loadError(join(dir, 'x.yaml')).render(dir)).toBe('x.yaml:1:1 the file is UTF-16; save it as UTF-8');
  });

  it('reads ${...} unquoted in flow collections, braces and quotes inside included, columns exact', () => {
    const dir = tree({ 'x.yaml': "vars: {a: 3, s: '}'}\nm: {b: ${max(a, 2) * 2}, c: [${a}, x${a}y], d: ${s + '{'}}\n" });
    const loaded = loadExperiment(join(dir, 'x.yaml'));
    expect(loaded.config.m).toEqual({ b: 6, c: [3, 'x3y'], d: '}{' });
    expect(loaded.locate(['m', 'c', 1])).toEqual({ file: join(dir, 'x.yaml'), line: 2, col: 36 });
  });

  it('supports YAML anchors and merge keys', () => {
    const dir = tree({ 'x.yaml': 'common: &c {units: 8, activation: gelu}\nlayer: {<<: *c, units: 16}\n' });
    expect(loadExperiment(join(dir, 'x.yaml')).config.layer).toEqual({ units: 16, activation: 'gelu' });
  });

  it('names a missing experiment file with a did-you-mean', () => {
    const dir = tree({ 'fnet.yaml': 'seed: 1\n' });
    const error = loadError(join(dir, 'fent.yaml'));
    expect(error.detail).toMatch(/^experiment file ".*fent.yaml" not found$/);
    expect(error.hint).toMatch(/did you mean ".*fnet.yaml"\?/);
  });
});

