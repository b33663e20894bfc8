import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { loadExperiment } from '../config/load.ts';
import { ConfigError, configErrorsOf, isConfigError } from '../errors.ts';
import { createRegistries, type Registries } from '../registry/kinds.ts';
import { parse } from 'yaml';
import { editorSchema, experimentSchema } from './experiment-schema.ts';
import { validateExperiment } from './validate.ts';

/** Stand-in entries with the same schema conventions as the real ones. */
function standIns(): Registries {
  const registries = createRegistries();
  const create = () => {
    throw new Error('not used');
  };
  const entry = (type: string, properties: Record<string, unknown>, required: string[] = []) => ({
    type,
    description: `${type} stand-in`,
    params: { type: 'object', additionalProperties: false, required, properties },
    describe: () => ({ inputShape: [32, 32, 3], numClasses: 100 }),
    create,
  });
  registries.blocks
    .register(entry('dense', { units: { type: 'integer', exclusiveMinimum: 0 }, use_bias: { type: 'boolean' }, activation: { enum: ['linear', 'gelu', 'relu'] } }, ['units']))
    .register(entry('dropout', { rate: { type: 'number', minimum: 0, exclusiveMaximum: 1 } }, ['rate']))
    .register(entry('repeat', { times: { type: 'integer', minimum: 1 }, layers: { $ref: '#/$defs/layers' } }, ['times', 'layers']));
  registries.datasets.register(entry('cifar100', { transforms: { type: 'array', items: { $ref: '#/$defs/transform' } } }));
  registries.transforms.register(entry('normalize', {})).register(entry('resize', { height: { type: 'integer' }, width: { type: 'integer' } }, ['height', 'width']));
  registries.optimizers.register(entry('adamw', { learning_rate: { type: 'number', exclusiveMinimum: 0 } }));
  return registries;
}

const registries = standIns();

function check(yaml: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-schema-'));
  writeFileSync(join(dir, 'exp.yaml'), yaml);
  try {
    validateExperiment(loadExperiment(join(dir, 'exp.yaml')), registries);
    return [];
  } catch (error) {
    if (!isConfigError(error)) throw error;
    return configErrorsOf(error).map((e: ConfigError) => e.render(dir));
  }
}

const VALID = `
seed: 1
data: {type: cifar100, transforms: [{type: normalize}]}
model:
  layers:
    - {type: dense, units: 8}
    - {type: repeat, times: 2, layers: [{type: dropout, rate: 0.1}]}
train: {epochs: 1, batch_size: 4, optimizer: {type: adamw, learning_rate: 0.001}}
`;

describe('experimentSchema', () => {
  it('is a valid draft-07 schema with one discriminated union per kind', () => {
    const schema = experimentSchema(registries);
    expect(new Ajv({ discriminator: true, strict: true, allowUnionTypes: true }).validateSchema(schema)).toBe(true);
    const block = (schema.$defs as Record<string, { oneOf?: { properties: { type: { const: string } } }[]; discriminator?: unknown }>).block!;
    expect(block.discriminator).toEqual({ propertyName: 'type' });
    expect(block.oneOf!.map((b) => b.properties.type.const)).toEqual(['dense', 'dropout', 'repeat']);
  });

  it('has an editor flavour where scalars may be ${...} expressions but entry types may not', () => {
    const validate = new Ajv({ discriminator: true, strict: true, allowUnionTypes: true, allErrors: true }).compile(editorSchema(registries));
    const raw = (text: string) => parse(text) as unknown;
    expect(validate(raw(VALID.replace('units: 8', 'units: "${dim * 2}"').replace('times: 2', 'times: "${n}"')))).toBe(true);
    expect(validate(raw(VALID.replace('units: 8', 'units: 8.5')))).toBe(false);
    expect(validate(raw(VALID.replace('units: 8', 'units: "many"')))).toBe(false);
    expect(validate(raw(VALID.replace('{type: dense,', '{type: "${kind}",')))).toBe(false);
  });

  it('accepts a valid experiment and returns it', () => {
    expect(check(VALID)).toEqual([]);
  });
});

describe('validateExperiment', () => {
  it('reports every bad node at once, one error each, located', () => {
    const errors = check(`
data: {type: cifar100, transforms: [{type: resize, height: 4}]}
model:
  layers:
    - {type: dense, units: "256x", use_bias: yes}
    - {type: dens, units: 3}
    - {type: dropout, rate: 0.1, rte: 3}
    - {type: repeat, times: 0, layers: [{type: dense, units: -1}]}
train: {epochs: 1, batch_size: 4, optimizer: {type: adamw}, epoch: 3}
`);
    expect(errors).toEqual([
      'exp.yaml:2:37 data.transforms[0]: missing required key "width" for transform type "resize"',
      'exp.yaml:5:28 model.layers[0].units: expected an integer, got string "256x"',
      'exp.yaml:5:46 model.layers[0].use_bias: expected true or false, got string "yes"; YAML 1.2 reads yes as text; write true or false',
      'exp.yaml:6:14 model.layers[1].type: unknown block type "dens"; did you mean "dense"? (valid block types: dense, dropout, repeat)',
      'exp.yaml:7:34 model.layers[2].rte: unknown key "rte" for block type "dropout"; did you mean "rate"? (valid keys: type, name, rate)',
      'exp.yaml:8:29 model.layers[3].times: expected a value >= 1, got 0',
      'exp.yaml:8:62 model.layers[3].layers[0].units: expected a value > 0, got -1',
      'exp.yaml:9:61 train.epoch: unknown key "epoch"; did you mean "epochs"? (valid keys: epochs, batch_size, steps_per_epoch, eval_batch_size, optimizer, schedule, loss, metrics, callbacks)',
    ]);
  });

  it('locates missing top-level sections at the start of the file', () => {
    expect(check('seed: 1\n')).toEqual(['exp.yaml:1:1 missing required keys "data", "model", "train"']);
  });

  it('names a missing type and lists the valid ones', () => {
    expect(check(VALID.replace('{type: dense, units: 8}', '{units: 8}'))).toEqual([
      'exp.yaml:6:7 model.layers[0]: missing required key "type" (which block this is); valid block types: dense, dropout, repeat',
    ]);
  });

  it('types an override by the schema: a number where a string is wanted becomes text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-schema-'));
    writeFileSync(join(dir, 'exp.yaml'), `name: 1\n${VALID}`);
    const fromFile = (() => {
      try {
        validateExperiment(loadExperiment(join(dir, 'exp.yaml')), registries);
      } catch (error) {
        return (error as ConfigError).render(dir);
      }
    })();
    expect(fromFile).toBe('exp.yaml:1:7 name: expected a string, got 1'); // files are never coerced
    const loaded = loadExperiment(join(dir, 'exp.yaml'), { overrides: ['name=2024', 'train.epochs=3'] });
    expect(validateExperiment(loaded, registries)).toMatchObject({ name: '2024', train: { epochs: 3 } });
  });

  it('explains errors of a schema applied to one node, at that node\'s path', async () => {
    const { Ajv } = await import('ajv');
    const { explainErrors } = await import('./validate.ts');
    const dir = mkdtempSync(join(tmpdir(), 'tessera-schema-'));
    writeFileSync(join(dir, 'exp.yaml'), 'model:\n  blocks:\n    b:\n      layers:\n        - {type: dense, units: -2, unit: 3}\n');
    const loaded = loadExperiment(join(dir, 'exp.yaml'));
    const node = { type: 'dense', units: -2, unit: 3 };
    const check = new Ajv({ allErrors: true, verbose: true }).compile({
      type: 'object', additionalProperties: false, properties: { type: {}, units: { type: 'integer', exclusiveMinimum: 0 } },
    });
    check(node);
    const errors = explainErrors(check.errors!, loaded, registries, { root: node, at: ['model', 'blocks', 'b', 'layers', 0] });
    expect(errors.map((e) => e.render(dir))).toEqual([
      'exp.yaml:5:36 model.blocks.b.layers[0].unit: unknown key "unit"; did you mean "units"? (valid keys: type, units)',
      'exp.yaml:5:32 model.blocks.b.layers[0].units: expected a value > 0, got -2',
    ]);
  });
});
