import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'schema',
  summary: 'Write the experiment JSON Schema (for editors and CI)',
  description:
    'Assembles the JSON Schema of an experiment file from everything registered and prints it, or ' +
    'writes it to --out. Point editors at it with a first line such as ' +
    '`# yaml-language-server: $schema=../schema/experiment.schema.json`. The copy committed at ' +
    'schema/experiment.schema.json is checked by a test; regenerate it after adding an entry.',
  positionals: [],
  options: {
    out: { type: 'string', short: 'o', placeholder: 'FILE', description: 'Write to FILE instead of standard output' },
  },
  examples: [
    ['exp schema --out schema/experiment.schema.json', 'Regenerate the committed schema'],
    ['exp schema | jq \'.["$defs"].block.oneOf[].properties.type.const\'', 'List the block types'],
  ],
  async run({ options }, context) {
    const { experimentSchema } = await import('@tessera/core');
    const text = `${JSON.stringify(experimentSchema(await context.registries()), null, 2)}\n`;
    if (options.out === undefined) {
      context.stdout.write(text);
      return;
    }
    writeFileSync(resolve(context.cwd, options.out), text);
    context.stderr.write(`wrote ${options.out}\n`);
  },
});
