import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { defineCommand, UsageError } from '../command.ts';
import { assertWritableFolder, MODEL_ARGUMENT, modelOptions, openPredictor, positiveInteger } from '../models.ts';

const SPLITS = ['train', 'validation', 'test'] as const;

export default defineCommand({
  name: 'evaluate',
  summary: 'Evaluate a trained model: loss, accuracy, confusion matrix, per-class precision/recall/F1',
  description:
    'Runs RUN\'s model (final, or --which best) over a split of its own dataset (--split, default test) or of ' +
    'the dataset in another experiment file (--data FILE.yaml; its model section is ignored), with the ' +
    'training run\'s preprocessing. Prints loss, accuracy, top-5 accuracy, macro F1, the weakest classes and ' +
    'the most-confused pairs, and records them in the run: eval_* metrics, and under eval/<split>/ a confusion ' +
    'matrix (PNG and CSV), per_class.csv, most_confused.csv and report.json; in MLflow too when the run is there. ' +
    'MODEL may also be an exported directory or MLflow URI: the files then go to --out.',
  positionals: [{ ...MODEL_ARGUMENT, name: 'RUN' }],
  options: {
    split: { type: 'string', placeholder: 'NAME', default: 'test', description: 'train, validation or test' },
    data: { type: 'string', placeholder: 'FILE.yaml', description: 'Evaluate on the data section of this experiment file' },
    out: { type: 'string', placeholder: 'DIR', description: 'Also write the files here (required when MODEL is not a run)' },
    'batch-size': { type: 'string', placeholder: 'N', default: '256', description: 'Images per forward pass' },
    ...modelOptions,
  },
  examples: [
    ['exp evaluate 20261204-010203-abcdef', 'The run\'s final model on its test split, recorded in the run'],
    ['exp evaluate 20261204-010203-abcdef --which best --split validation', 'The best epoch\'s model on the validation split'],
    ['exp evaluate 20261204-010203-abcdef --data experiments/other-data.yaml', 'The same model on another dataset'],
  ],
  async run({ positionals, options }, context) {
    const split = options.split as (typeof SPLITS)[number];
    if (!SPLITS.includes(split)) throw new UsageError(`--split is ${SPLITS.join(', ')}; got "${options.split}"`, 'evaluate');
    const batchSize = positiveInteger('batch-size', options['batch-size'], 'evaluate');
    if (options.out) assertWritableFolder(resolve(context.cwd, options.out), options.out, 'evaluate', { create: true });
    const core = await import('@tessera/core');
    const registries = await context.registries();
    const { predictor, resolved } = await openPredictor(positionals[0]!, context, { which: options.which, runsDir: options['runs-dir'], backend: options.backend, plugin: options.plugin }, 'evaluate');
    if (!resolved.runDir && !options.out) {
      predictor.dispose();
      throw new UsageError(`${resolved.label} is not a local run, so there is no run to record the evaluation in: give --out DIR`, 'evaluate');
    }
    const log = (message: string) => void context.stderr.write(`${message}\n`);
    try {
      const { metadata } = predictor;
      let data = metadata.config.data;
      let configDir = context.cwd;
      let name: string = split;
      if (options.data) {
        const file = resolve(context.cwd, options.data);
        // Its dataset or transforms may come from its plugins.
        data = core.loadValidatedExperiment(file, await context.registries(file)).config.data;
        configDir = dirname(file);
        name = `${data.type}-${split}`;
      } else {
        // Relative data paths in the config are relative to where its experiment file was: the
        // run records it; an exported model names its source file (relative to where it was exported).
        const source = resolve(context.cwd, metadata.source);
        configDir = (resolved.runDir ? await core.runConfigDir(resolved.runDir) : undefined) ?? (existsSync(source) ? dirname(source) : configDir);
      }
      // The best epoch's model is another model: its evaluation is recorded beside the final one's.
      if (metadata.which === 'best') name = `${name}-best`;
      const dataset = await core.rawDataset(data, { registries, configDir, seed: metadata.seed, log });
      if (dataset.info.numClasses !== predictor.numClasses) {
        throw new UsageError(`the model predicts ${predictor.numClasses} classes, the dataset ${dataset.info.name} has ${dataset.info.numClasses}`, 'evaluate');
      }
      const rawShape = dataset.info.inputShape.join('x');
      if (rawShape !== metadata.rawShape.join('x')) {
        throw new UsageError(`the dataset's images are ${rawShape}, the model takes ${metadata.rawShape.join('x')}`, 'evaluate');
      }
      if (dataset.info.counts[split] === 0) throw new UsageError(`the dataset ${dataset.info.name} has no ${split} examples`, 'evaluate');

      const started = performance.now();
      const evaluation = await core.evaluatePredictor(predictor, dataset, split, { batchSize, seed: metadata.seed });
      const title = `${metadata.experiment} ${metadata.runId ?? ''} on ${dataset.info.name} ${split}`.replace(/\s+/g, ' ');
      const files = await core.evaluationArtifacts(evaluation, predictor.classes, title);
      context.stdout.write(core.formatEvaluation(evaluation));
      context.stdout.write(`(${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
      if (options.out) {
        const out = resolve(context.cwd, options.out);
        mkdirSync(out, { recursive: true });
        for (const [file, bytes] of files) writeFileSync(join(out, file), bytes);
        const shown = relative(context.cwd, out);
        context.stdout.write(`wrote ${[...files.keys()].join(', ')} to ${shown.startsWith('..') ? out : shown || '.'}\n`);
      }
      if (resolved.runDir) {
        const { mlflow } = await core.recordEvaluation(resolved.runDir, evaluation, files, { name, log });
        const dir = join(resolved.runDir, 'artifacts', 'eval', name);
        const where = relative(context.cwd, dir).startsWith('..') ? dir : relative(context.cwd, dir);
        context.stdout.write(`recorded in run ${metadata.runId ?? resolved.label}: ${core.evaluationMetricPrefix(name)}* metrics and ${where}/${mlflow ? ' (and in MLflow)' : ''}\n`);
      }
    } finally {
      predictor.dispose();
    }
  },
});
