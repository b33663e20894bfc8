import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand, pluginOption, registriesWithPlugins } from '../command.ts';

export default defineCommand({
  name: 'schema',
  summary: 'Write the experiment JSON Schema (for editors and CI)',
  description:
    'Assembles the JSON Schema of an experiment file from everything registered and prints it, or ' +
    'writes it to --out. It describes files as written: numbers, booleans and enums may be ${...} ' +
    'expressions and sections a base file provides may be left out (exp validate checks the merged, ' +
    'evaluated result strictly). Point editors at it with a first line such as ' +
    '`# yaml-language-server: $schema=../schema/experiment.schema.json`. The copy committed at ' +
    'schema/experiment.schema.json is checked by a test; regenerate it after adding an entry.',
  positionals: [],
  options: {
    out: { type: 'string', short: 'o', placeholder: 'FILE', description: 'Write to FILE instead of standard output' },
    sweep: { type: 'boolean', description: 'The schema of sweep files (experiments/sweeps/*.yaml) instead' },
    plugin: pluginOption,
  },
  examples: [
    ['exp schema --out schema/experiment.schema.json', 'Regenerate the committed schema'],
    ['exp schema --sweep --out schema/sweep.schema.json', 'Regenerate the committed sweep-file schema'],
    ['exp schema | jq \'.["$defs"].block.anyOf[].properties.type.const\'', 'List the block types'],
  ],
  async run({ options }, context) {
    const { editorSchema } = await import('@tessera/core');
    const { sweepSchema } = await import('@tessera/sweeps');
    const schema = options.sweep ? sweepSchema() : editorSchema(await registriesWithPlugins(context, options.plugin));
    const text = `${JSON.stringify(schema, null, 2)}\n`;
    if (options.out === undefined) {
      context.stdout.write(text);
      return;
    }
    writeFileSync(resolve(context.cwd, options.out), text);
    context.stderr.write(`wrote ${options.out}\n`);
  },
});
