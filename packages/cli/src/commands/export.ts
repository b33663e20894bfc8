import { relative, resolve } from 'node:path';
import { defineCommand, registriesWithPlugins, setOption, UsageError } from '../command.ts';
import { assertWritableFolder, loadResolvedModel, MODEL_ARGUMENT, modelOptions, resolveModelArgument, whichOption } from '../models.ts';

export default defineCommand({
  name: 'export',
  summary: 'Write a run\'s trained model (or an experiment\'s initial one) as a self-contained TF.js directory',
  description:
    'Given a run (id, directory or MLflow URI), copies its final model (or --which best) to DIR: model.json ' +
    '(architecture, and in userDefinedMetadata.tessera the preprocessing state such as normalization statistics, ' +
    'class names, input size, config digest and run id) and weights.bin, loadable by tf.loadLayersModel once @tessera/models is imported, ' +
    '`exp predict`, `exp serve` and `exp evaluate`. Given an experiment YAML with --init, builds the model with ' +
    'its initial weights instead (seeded by the run seed or --seed), adapting the preprocessing on the data.',
  positionals: [{ ...MODEL_ARGUMENT, name: 'RUN|FILE.yaml', description: `${MODEL_ARGUMENT.description}; or an experiment YAML with --init` }],
  options: {
    out: { type: 'string', placeholder: 'DIR', description: 'Output directory (created; existing files are replaced)' },
    init: { type: 'boolean', description: 'With an experiment YAML: export the untrained model with its initial weights' },
    seed: { type: 'string', placeholder: 'N', description: 'With --init: initialisation seed (default: the experiment\'s seed)' },
    set: setOption,
    which: modelOptions.which,
    'runs-dir': modelOptions['runs-dir'],
    plugin: modelOptions.plugin,
  },
  examples: [
    ['exp export 20261204-010203-abcdef --out models/mixer', 'A run\'s final model, ready to copy anywhere'],
    ['exp export runs/smoke/20261204-010203-abcdef --which best --out models/smoke-best', 'The best epoch\'s model'],
    ['exp export experiments/smoke.yaml --init --out /tmp/smoke --seed 7', 'The model with the weights it starts training from'],
  ],
  async run({ positionals, options }, context) {
    if (!options.out) throw new UsageError('--out DIR is required', 'export');
    assertWritableFolder(resolve(context.cwd, options.out), options.out, 'export', { create: true });
    const spec = positionals[0]!;
    const out = resolve(context.cwd, options.out);
    const shown = relative(context.cwd, out);
    const where = shown && !shown.startsWith('..') ? shown : out;
    const isYaml = /\.ya?ml$/i.test(spec);
    if (isYaml && !options.init) {
      throw new UsageError(`${spec} is an experiment file, which has no trained weights: export a run (its id or directory), or add --init for the initial weights`, 'export');
    }
    if (!isYaml && (options.init || options.seed !== undefined || options.set?.length)) {
      throw new UsageError('--init, --seed and --set apply to an experiment YAML; a run exports the model it trained', 'export');
    }
    if (isYaml && options.plugin?.length) {
      throw new UsageError('--plugin applies to a model; an experiment YAML lists its plugins itself (plugins:, tessera.config.yaml)', 'export');
    }
    if (!isYaml) {
      const { copyModelDir, disposeModel, withRecordedPlugins } = await import('@tessera/core');
      // The primitives' layer classes and the model's plugins, to check the model loads.
      const registries = await registriesWithPlugins(context, options.plugin);
      const resolved = await resolveModelArgument(spec, context, { which: whichOption(options.which, 'export'), runsDir: options['runs-dir'] });
      const { model, metadata } = await loadResolvedModel(resolved, registries, options.plugin, context);
      disposeModel(model);
      // The plugins the copy names, which `exp predict OUT` will load: those given with --plugin
      // (a user wrote them); else a local model's own; never a downloaded model's (its list is data).
      const given = options.plugin?.map((path) => resolve(context.cwd, path));
      const replace = given?.length ? given : resolved.downloaded ? [] : undefined;
      const copied = copyModelDir(resolved.dir, out, replace ? (text) => withRecordedPlugins(text, replace) : undefined);
      if (resolved.downloaded && !given?.length && (metadata.plugins ?? (metadata.config as { plugins?: unknown[] }).plugins)?.length) {
        context.stderr.write(`${resolved.label} was downloaded: the plugins it names are not recorded in ${where}/model.json (give them with --plugin when exporting or loading it)\n`);
      }
      context.stdout.write(
        `wrote ${where}/ (${copied.files.join(', ')}; ${(copied.bytes / 1e6).toFixed(1)} MB): ${metadata.which} model of run ${metadata.runId ?? '-'}, ` +
          `${metadata.classes.length} classes, input ${metadata.rawShape.join('x')}\n`,
      );
      return;
    }

    if (options.seed !== undefined && !/^\d+$/.test(options.seed)) throw new UsageError(`--seed expects a non-negative integer, got "${options.seed}"`, 'export');
    const { exportModel, selectBackend, disposeModel, loadValidatedExperiment, buildExperimentModel, createExperimentData, modelMetadata, loadedPlugins } =
      await import('@tessera/core');
    const file = resolve(context.cwd, spec);
    const registries = await context.registries(file, options.set ?? []);
    const log = (message: string) => void context.stderr.write(`${message}\n`);
    const experiment = loadValidatedExperiment(file, registries, { overrides: options.set ?? [] });
    const { config } = experiment;
    const seed = options.seed !== undefined ? Number(options.seed) : experiment.seed;
    // The weights are made where the model will run.
    await selectBackend((config.backend ?? 'auto') as Parameters<typeof selectBackend>[0], () => {});
    const { model } = buildExperimentModel(experiment, registries, { seed });
    try {
      // The data section is instantiated for its preprocessing state (normalization statistics).
      const dataset = await createExperimentData(experiment, registries, { log });
      // What context.registries(file) loaded: the project's and the experiment's plugins (absolute).
      const plugins = loadedPlugins(registries);
      await exportModel(model, out, modelMetadata({ config, dataset, which: 'init', source: relative(context.cwd, file) || file, seed, plugins }));
      context.stdout.write(`wrote ${where}/model.json and weights.bin (${model.countParams().toLocaleString('en-US')} parameters, initial weights)\n`);
    } finally {
      disposeModel(model);
    }
  },
});
