import { relative, resolve } from 'node:path';
import { defineCommand, setOption } from '../command.ts';
import { renderConfigError, styleFor } from '../style.ts';

export default defineCommand({
  name: 'validate',
  summary: 'Check experiment files: YAML, extends, variables, the schema and the model graph',
  description:
    'Loads each experiment file as `exp run` would (extends, --set overrides, ${...} variables) and checks it ' +
    'against the schema assembled from every registered block, dataset, transform, optimizer, schedule and ' +
    'callback, evaluates and checks every instance of a model.blocks template, then builds its model for the ' +
    'input shape the dataset declares (as `exp summary` does: no data is read). Prints "ok FILE" for each good file and every ' +
    'problem of a bad one as file:line:col. Exits 0 when all files are valid, 2 otherwise.',
  positionals: [{ name: 'FILE', variadic: true, description: 'Experiment YAML files' }],
  options: { set: setOption },
  examples: [
    ['exp validate experiments/*.yaml', 'Check every experiment'],
    ['exp validate EXPERIMENT.yaml --set model.vars.dropout=0.5', 'Check an experiment with an override applied'],
  ],
  async run({ positionals, options }, context) {
    const { isConfigError, configErrorsOf, cpuLoader, disposeModel, loadValidatedExperiment, buildExperimentModel } = await import('@tessera/core');
    // The model is built too (shapes, names, the class count are only known then), but no data is
    // read. The plain JavaScript backend starts at once and, unlike the native one, logs nothing.
    await cpuLoader.load({});
    const out = styleFor(context.stdout);
    const err = styleFor(context.stderr);
    let failed = 0;
    for (const file of positionals) {
      const shown = relative(context.cwd, resolve(context.cwd, file)) || file;
      try {
        // Each file's own plugins (and its project's) join the registries before it is checked.
        const registries = await context.registries(resolve(context.cwd, file), options.set ?? []);
        const experiment = loadValidatedExperiment(resolve(context.cwd, file), registries, { overrides: options.set ?? [] });
        disposeModel(buildExperimentModel(experiment, registries).model);
        context.stdout.write(`${out.green('ok')} ${shown}\n`);
      } catch (error) {
        if (!isConfigError(error)) throw error;
        failed++;
        const errors = configErrorsOf(error);
        context.stderr.write(`${errors.map((e) => renderConfigError(e, context.cwd, err)).join('\n')}\n`);
        context.stderr.write(`${err.red('FAIL')} ${shown} (${errors.length} error${errors.length === 1 ? '' : 's'})\n`);
      }
    }
    if (positionals.length > 1 && failed > 0) context.stderr.write(`${failed} of ${positionals.length} files failed\n`);
    return failed > 0 ? 2 : 0;
  },
});
