import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { editorSchema, editorValidator, parseYamlFile } from '@tessera/core';
import { sweepSchema } from '@tessera/sweeps';
import { builtinRegistries } from '@tessera/builtins';
import { runCli } from '../test-helpers.ts';

const ROOT = join(import.meta.dirname, '../../../..');
const FIXTURES = join(import.meta.dirname, '__fixtures__');

describe('exp config', () => {
  it('prints the resolved config as JSON: variables evaluated, overrides applied, every default written in', async () => {
    const { code, stdout } = await runCli(['config', 'good.yaml', '--json', '--set', 'vars.patch_size=2', '--set', 'train.epochs=5'], { cwd: FIXTURES });
    expect(code).toBe(0);
    const dense = { axis: -1, activation: 'linear', use_bias: true, kernel_initializer: 'glorot_uniform', bias_initializer: 'zeros' };
    expect(JSON.parse(stdout)).toEqual({
      name: 'good',
      seed: 1,
      vars: { num_classes: 4, patch_size: 2 },
      data: {
        type: 'synthetic',
        image_shape: [8, 8, 3],
        num_classes: 4,
        train_size: 64,
        test_size: 16,
        transforms: [{ type: 'normalize', epsilon: 1e-7 }],
        noise: 40,
        validation_split: 0,
        validation_shuffle: false,
        validation_from: 'end',
      },
      model: {
        layers: [
          { type: 'patches', size: 2 },
          { type: 'dense', units: 32, ...dense, activation: 'gelu' },
          { type: 'global_average_pooling', axis: 1 },
          { type: 'dense', units: 4, ...dense },
        ],
      },
      train: {
        epochs: 5,
        batch_size: 16,
        optimizer: { type: 'adamw', learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, weight_decay: 0.004, exclude_from_weight_decay: [] },
        metrics: ['accuracy', 'top5_accuracy'],
        callbacks: [],
      },
    });
  });

  it('prints YAML with a header naming the bases and the overrides', async () => {
    const { code, stdout } = await runCli(['config', 'bad/../good.yaml', '--set', 'seed=7'], { cwd: FIXTURES });
    expect(code).toBe(0);
    expect(stdout.split('\n').slice(0, 4)).toEqual(['# resolved from good.yaml', '# overrides: --set seed=7', 'name: good', 'seed: 7']);
    expect(stdout).toContain('  image_shape: [8, 8, 3]\n');
    expect(stdout).toContain('    - {type: patches, size: 4}\n');
  });

  it('--show-origin follows each value with where it was written: base, file or --set', async () => {
    const { code, stdout } = await runCli(['config', 'bad/negative-size.yaml', '--show-origin', '--set', 'train.epochs=2'], { cwd: FIXTURES });
    expect(code).toBe(2); // the fixture is invalid; a valid child shows the same thing:
    const ok = await runCli(['config', 'bad/../good.yaml', '--show-origin', '--set', 'train.epochs=2'], { cwd: FIXTURES });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('\n  patch_size: 4 # good.yaml:6:15\n');
    expect(ok.stdout).toContain('\n  image_shape: [8, 8, 3] # good.yaml:9:16\n');
    expect(ok.stdout).toContain('\n    - type: patches # good.yaml:17:14\n      size: 4 # good.yaml:17:29\n');
    expect(ok.stdout).toContain('\n  epochs: 2 # "--set train.epochs=2"\n');
    expect(stdout).toBe('');
  });

  it('resolves every committed experiment', async () => {
    for (const name of ['fnet', 'mixer', 'gmlp', 'smoke']) {
      const { code, stderr } = await runCli(['config', `experiments/${name}.yaml`, '--json'], { cwd: ROOT });
      expect([name, code, stderr]).toEqual([name, 0, '']);
    }
  });
});

describe('exp schema', () => {
  it('the committed schema/experiment.schema.json is up to date (regenerate: pnpm exp schema --out schema/experiment.schema.json)', () => {
    const committed = readFileSync(join(ROOT, 'schema/experiment.schema.json'), 'utf8');
    expect(committed).toBe(`${JSON.stringify(editorSchema(builtinRegistries()), null, 2)}\n`);
  });

  it('lets editors accept every committed experiment and base file as written (before evaluation)', () => {
    const validate = editorValidator(builtinRegistries());
    const files = ['', 'base/'].flatMap((dir) =>
      readdirSync(join(ROOT, 'experiments', dir)).filter((f) => f.endsWith('.yaml')).map((f) => `experiments/${dir}${f}`),
    );
    expect(files.length).toBeGreaterThan(4);
    for (const file of files) {
      validate(parseYamlFile(join(ROOT, file)).value);
      expect([file, validate.errors ?? []]).toEqual([file, []]);
    }
  });

  it('the committed schema/sweep.schema.json is up to date (regenerate: pnpm exp schema --sweep --out schema/sweep.schema.json)', () => {
    const committed = readFileSync(join(ROOT, 'schema/sweep.schema.json'), 'utf8');
    expect(committed).toBe(`${JSON.stringify(sweepSchema(), null, 2)}\n`);
  });

  it('every file in experiments/ starts with a yaml-language-server modeline naming the right schema', () => {
    const files = ['', 'base/', 'sweeps/'].flatMap((dir) =>
      readdirSync(join(ROOT, 'experiments', dir)).filter((f) => f.endsWith('.yaml')).map((f) => `experiments/${dir}${f}`),
    );
    expect(files.length).toBeGreaterThan(7);
    for (const file of files) {
      const first = readFileSync(join(ROOT, file), 'utf8').split('\n')[0]!;
      const target = first.match(/^# yaml-language-server: \$schema=(\S+)$/)?.[1];
      const schema = file.startsWith('experiments/sweeps/') ? 'schema/sweep.schema.json' : 'schema/experiment.schema.json';
      expect([file, target && relative(ROOT, resolve(ROOT, dirname(file), target))]).toEqual([file, schema]);
    }
  });

  it('prints the schema to stdout', async () => {
    const { code, stdout } = await runCli(['schema']);
    expect(code).toBe(0);
    const schema = JSON.parse(stdout);
    expect(schema.$defs.block.anyOf.map((b: { properties: { type: { const: string } } }) => b.properties.type.const)).toEqual(builtinRegistries().blocks.types());
  });
});

describe('exp blocks', () => {
  it('lists one kind briefly, one type per line', async () => {
    const { code, stdout } = await runCli(['blocks', '--kind', 'optimizers', '--brief']);
    expect(code).toBe(0);
    const registries = builtinRegistries();
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`optimizer types (${registries.optimizers.types().length}):`);
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/)[0])).toEqual(registries.optimizers.types());
  });

  it('shows one type with its parameters: type, bounds, required, default', async () => {
    const { stdout } = await runCli(['blocks', 'dropout']);
    expect(stdout).toMatch(/^block types \(1\):\n {2}dropout +\S.*\n +rate +number >= 0, < 1, required: /);
  });

  it('suggests a close type name', async () => {
    const { code, stderr } = await runCli(['blocks', 'dropot']);
    expect(code).toBe(2);
    expect(stderr).toContain('no registered type "dropot" (did you mean "dropout"?)');
  });
});
