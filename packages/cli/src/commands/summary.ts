import { resolve } from 'node:path';
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

export default defineCommand({
  name: 'summary',
  summary: 'Print an experiment\'s model: layers, output shapes and parameter counts',
  description:
    'Builds the model of an experiment file (no data is read: the input shape is the one the dataset entry ' +
    'declares from its params and transforms) and prints a Keras-style table: every layer with its scoped name and type, its ' +
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
    const { loadValidatedExperiment, buildExperimentModel, modelSummary, formatSummary, disposeModel } = await import('@tessera/core');
    const inputShape = parseShape(options['input-shape'], 'summary');
    const file = resolve(context.cwd, positionals[0]!);
    const registries = await context.registries(file, options.set ?? []);
    const experiment = loadValidatedExperiment(file, registries, { overrides: options.set ?? [] });
    const { model } = buildExperimentModel(experiment, registries, inputShape ? { inputShape } : {});
    const summary = modelSummary(model);
    context.stdout.write(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    disposeModel(model);
  },
});
