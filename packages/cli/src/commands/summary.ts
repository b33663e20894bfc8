import { dirname, resolve } from 'node:path';
import type { ExperimentConfig, Registries } from '@tessera/core';
import { defineCommand, setOption, UsageError } from '../command.ts';

/** Parses `64,64,3`; undefined when the option was not given. */
export function parseShape(value: string | undefined, command: string): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(/[,x ]+/).filter(Boolean);
  if (parts.length === 0 || !parts.every((p) => /^\d+$/.test(p) && Number(p) > 0)) {
    throw new UsageError(`--input-shape expects positive integers like 64,64,3, got "${value}"`, command);
  }
  return parts.map(Number);
}

/**
 * The model's input shape without reading any data: the dataset's raw image shape (`image_shape`
 * when the dataset has one, else CIFAR's 32x32x3) through each transform's outputShape.
 */
export function modelInputShape(data: ExperimentConfig['data'], registries: Registries): number[] {
  const raw = Array.isArray(data.image_shape) ? (data.image_shape as number[]) : [32, 32, 3];
  const transforms = (data.transforms ?? []) as { type: string }[];
  return transforms.reduce((shape, { type, ...params }) => registries.transforms.get(type).create(params).outputShape(shape), raw);
}

/**
 * Loads, validates and builds an experiment's model (initialised with the run seed).
 * `beforeBuild` runs between the two, e.g. to select the config's backend so that the weights
 * are made where the model will run.
 */
export async function buildExperimentModel(
  file: string,
  options: { set?: string[]; seed?: string; inputShape?: string },
  command: string,
  registries: Registries,
  beforeBuild?: (config: ExperimentConfig) => Promise<void>,
) {
  const { loadValidatedExperiment, buildModel } = await import('@tessera/core');
  const loaded = loadValidatedExperiment(file, registries, { overrides: options.set ?? [] });
  const { config } = loaded;
  if (options.seed !== undefined && !/^\d+$/.test(options.seed)) throw new UsageError(`--seed expects a non-negative integer, got "${options.seed}"`, command);
  const seed = options.seed !== undefined ? Number(options.seed) : (config.seed ?? 0);
  const inputShape = parseShape(options.inputShape, command) ?? modelInputShape(config.data, registries);
  await beforeBuild?.(config);
  const model = buildModel(config.model, {
    registries,
    inputShape,
    seed,
    vars: config.vars ?? {},
    locate: loaded.locate,
    locateKey: loaded.locateKey,
    name: config.name ?? 'model',
  });
  return { model, config, seed, inputShape, configDir: dirname(resolve(file)), locate: loaded.locate };
}

export default defineCommand({
  name: 'summary',
  summary: 'Print an experiment\'s model: layers, output shapes and parameter counts',
  description:
    'Builds the model of an experiment file (no data is read: the input shape comes from the dataset\'s image ' +
    'shape and its transforms) and prints a Keras-style table: every layer with its scoped name and type, its ' +
    'output shape and its parameters, a shared layer marked with how often it is applied, then the totals. ' +
    '--json prints the same as JSON.',
  positionals: [{ name: 'FILE', description: 'Experiment YAML file' }],
  options: {
    set: setOption,
    json: { type: 'boolean', description: 'Print JSON instead of the table' },
    'input-shape': { type: 'string', placeholder: 'H,W,C', description: 'Input shape of one example (default: from the data section)' },
  },
  examples: [
    ['exp summary experiments/smoke.yaml', 'The smoke experiment\'s model, layer by layer'],
    ['exp summary experiments/smoke.yaml --json', 'The same as JSON'],
    ['exp summary EXPERIMENT.yaml --set model.vars.patch_size=4', 'With another patch size'],
  ],
  async run({ positionals, options }, context) {
    const { modelSummary, formatSummary, disposeModel } = await import('@tessera/core');
    const file = resolve(context.cwd, positionals[0]!);
    const registries = await context.registries(file, options.set ?? []);
    const { model } = await buildExperimentModel(file, { set: options.set, inputShape: options['input-shape'] }, 'summary', registries);
    const summary = modelSummary(model);
    context.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    disposeModel(model);
  },
});
