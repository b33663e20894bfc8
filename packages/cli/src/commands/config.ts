import { relative, resolve } from 'node:path';
import type { ConfigPath } from '@tessera/core';
import { defineCommand, setOption } from '../command.ts';

export default defineCommand({
  name: 'config',
  summary: 'Print the resolved config, exactly as it will run',
  description:
    'Loads an experiment (extends merged, --set overrides applied, ${...} evaluated; the layers of ' +
    'model.blocks templates stay as written) and validates it, then prints the result as YAML ' +
    '(or JSON with --json). Feed it back to `exp run` or diff two of them. Secrets (keys such as ' +
    'token or password, passwords in URLs) are masked.',
  positionals: [{ name: 'FILE', description: 'Experiment YAML file' }],
  options: {
    set: setOption,
    json: { type: 'boolean', default: false, description: 'Print JSON instead of YAML' },
    'show-origin': { type: 'boolean', default: false, description: 'Follow each value with the file:line:col (or --set) it came from' },
  },
  examples: [
    ['exp config experiments/smoke.yaml', 'The full config with its bases merged and variables evaluated'],
    ['exp config EXPERIMENT.yaml --set train.epochs=1 --json', 'As JSON, with an override'],
    ['exp config EXPERIMENT.yaml --show-origin', 'Which file (base or child) or override set each value']
  ],
  async run({ positionals, options }, context) {
    const { loadValidatedExperiment, formatConfig, formatLocation, redactSecrets } = await import('@tessera/core');
    const file = resolve(context.cwd, positionals[0]!);
    const loaded = loadValidatedExperiment(file, await context.registries(file, options.set ?? []), { overrides: options.set ?? [] });
    const config = redactSecrets(loaded.config);
    if (options.json) {
      context.stdout.write(formatConfig(config, 'json'));
      return;
    }
    const show = (f: string) => relative(context.cwd, f) || f;
    const bases = loaded.files.slice(0, -1).map(show);
    const header = [`# resolved from ${show(loaded.source)}${bases.length > 0 ? ` (extends ${bases.join(', ')})` : ''}`];
    if (loaded.overrides.length > 0) header.push(`# overrides: ${loaded.overrides.map((o) => `--set ${o}`).join(' ')}`);
    const origin = options['show-origin'] ? (path: ConfigPath) => formatLocation(loaded.locate(path), context.cwd) : undefined;
    context.stdout.write(`${header.join('\n')}\n${formatConfig(config, 'yaml', { origin })}`);
  },
});
