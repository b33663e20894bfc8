import { resolve, relative } from 'node:path';
import { defineCommand, setOption, UsageError } from '../command.ts';

/** How `exp predict` reads a binary file of images: CIFAR records, `labelBytes` then the planes. */
export interface RecordFormat {
  labelBytes: number;
  /** Which label byte is the class the model predicts. */
  labelIndex: number;
}

/** The record layout of the dataset's own binary files (CIFAR-100: coarse then fine label). */
export function recordFormat(data: Record<string, unknown>): RecordFormat {
  if (data.type === 'cifar100') return { labelBytes: 2, labelIndex: data.label_mode === 'coarse' ? 0 : 1 };
  return { labelBytes: 1, labelIndex: 0 };
}

export default defineCommand({
  name: 'export',
  summary: 'Write an experiment\'s initialised model in the TF.js LayersModel format',
  description:
    'Builds the model of an experiment file with the run seed (or --seed) and writes DIR/model.json and ' +
    'DIR/weights.bin, loadable by tf.loadLayersModel and by `exp predict`. The data section is instantiated ' +
    'so the preprocessing state (normalization statistics, adapted once and cached by the dataset) is saved ' +
    'in model.json\'s metadata with the resolved config; `exp predict` applies the same preprocessing.',
  positionals: [{ name: 'FILE', description: 'Experiment YAML file' }],
  options: {
    out: { type: 'string', placeholder: 'DIR', description: 'Output directory (created; existing files are replaced)' },
    seed: { type: 'string', placeholder: 'N', description: 'Initialisation seed (default: the experiment\'s seed)' },
    set: setOption,
  },
  examples: [
    ['exp export experiments/smoke.yaml --out models/smoke', 'The model with the weights it starts training from'],
    ['exp export experiments/smoke.yaml --out /tmp/smoke --seed 7', 'Another initialisation'],
  ],
  async run({ positionals, options }, context) {
    if (!options.out) throw new UsageError('--out DIR is required', 'export');
    if (options.seed !== undefined && !/^\d+$/.test(options.seed)) throw new UsageError(`--seed expects a non-negative integer, got "${options.seed}"`, 'export');
    const { exportModel, selectBackend, disposeModel, loadValidatedExperiment, buildExperimentModel, createExperimentData } = await import('@tessera/core');
    const registries = await context.registries();
    const file = resolve(context.cwd, positionals[0]!);
    const log = (message: string) => void context.stderr.write(`${message}\n`);
    const experiment = loadValidatedExperiment(file, registries, { overrides: options.set ?? [] });
    const { config } = experiment;
    const seed = options.seed !== undefined ? Number(options.seed) : experiment.seed;
    // The weights are made where the model will run.
    await selectBackend((config.backend ?? 'auto') as Parameters<typeof selectBackend>[0], () => {});
    const { model, data } = buildExperimentModel(experiment, registries, { seed });
    // The data section is instantiated for its preprocessing state (normalization statistics).
    const dataset = await createExperimentData(experiment, registries, { log }).catch((error: unknown) => {
      disposeModel(model);
      throw error;
    });
    const { type } = config.data;
    const out = resolve(context.cwd, options.out);
    await exportModel(model, out, {
      experiment: config.name ?? 'model',
      source: relative(context.cwd, file) || file,
      seed,
      inputShape: data.inputShape,
      data: {
        type,
        transforms: config.data.transforms ?? [],
        state: dataset.state(),
        numClasses: dataset.info.numClasses,
        ...(dataset.info.labelNames ? { labelNames: dataset.info.labelNames } : {}),
        records: recordFormat(config.data),
      },
      config,
    });
    const count = model.countParams().toLocaleString('en-US');
    const shown = relative(context.cwd, out);
    const where = shown && !shown.startsWith('..') ? shown : out;
    context.stdout.write(`wrote ${where}/model.json and weights.bin (${count} parameters)\n`);
    disposeModel(model);
  },
});
