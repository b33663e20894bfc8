import { relative, resolve } from 'node:path';
import { defineCommand, setOption } from '../command.ts';
import { renderConfigError, styleFor } from '../style.ts';

export default defineCommand({
  name: 'validate',
  summary: 'Check experiment files: YAML, extends, variables and the schema',
  description:
    'Loads each experiment file as `exp run` would (extends, --set overrides, ${...} variables) and checks it ' +
    'against the schema assembled from every registered block, dataset, transform, optimizer, schedule and ' +
    'callback. Prints "ok FILE" for each good file and every problem of a bad one as file:line:col. ' +
    'Exits 0 when all files are valid, 2 otherwise.',
  positionals: [{ name: 'FILE', variadic: true, description: 'Experiment YAML files' }],
  options: { set: setOption },
  examples: [
    ['exp validate experiments/*.yaml', 'Check every experiment'],
    ['exp validate experiments/fnet.yaml --set model.vars.dropout=0.5', 'Check an experiment with an override applied'],
  ],
  async run({ positionals, options }, context) {
    const { loadValidatedExperiment, isConfigError, configErrorsOf } = await import('@tessera/core');
    const registries = await context.registries();
    const out = styleFor(context.stdout);
    const err = styleFor(context.stderr);
    let failed = 0;
    for (const file of positionals) {
      const shown = relative(context.cwd, resolve(context.cwd, file)) || file;
      try {
        loadValidatedExperiment(resolve(context.cwd, file), registries, { overrides: options.set ?? [] });
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
