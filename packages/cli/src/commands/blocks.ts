import type { EntryBase, EntryKind, JsonSchema } from '@tessera/core';
import { defineCommand, pluginOption, registriesWithPlugins, table, UsageError } from '../command.ts';

// The kinds of core's ENTRY_KINDS, spelled out so that `exp --help` need not load core.
const KINDS = ['block', 'dataset', 'transform', 'optimizer', 'schedule', 'callback'] as const satisfies readonly EntryKind[];
type Kind = (typeof KINDS)[number];

const REFS: Record<string, string> = {
  '#/$defs/block': 'block',
  '#/$defs/layers': 'list of blocks',
  '#/$defs/transform': 'transform',
  '#/$defs/dataset': 'dataset',
  '#/$defs/optimizer': 'optimizer',
  '#/$defs/schedule': 'schedule',
  '#/$defs/callback': 'callback',
};

/** A parameter's type in a few words: `integer >= 1`, `linear|gelu|relu`, `list of blocks`. */
export function describeType(schema: JsonSchema): string {
  if (typeof schema.$ref === 'string') return REFS[schema.$ref] ?? schema.$ref;
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join('|');
  if ('const' in schema) return JSON.stringify(schema.const);
  for (const union of ['anyOf', 'oneOf'] as const) {
    if (Array.isArray(schema[union])) return (schema[union] as JsonSchema[]).map(describeType).join(' | ');
  }
  const type = Array.isArray(schema.type) ? schema.type.join('|') : String(schema.type ?? 'any');
  if (type === 'array') return schema.items ? `list of ${describeType(schema.items as JsonSchema)}` : 'list';
  if (type === 'object') return 'mapping';
  const bounds: string[] = [];
  if (schema.minimum !== undefined) bounds.push(`>= ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined) bounds.push(`<= ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) bounds.push(`< ${schema.exclusiveMaximum}`);
  return [type, bounds.join(', ')].filter(Boolean).join(' ');
}

function parameterRows(entry: EntryBase): [string, string][] {
  const properties = (entry.params.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((entry.params.required ?? []) as string[]);
  return Object.entries(properties).map(([name, schema]) => {
    const facts = [describeType(schema)];
    if (required.has(name)) facts.push('required');
    if (schema.default !== undefined) facts.push(`default ${JSON.stringify(schema.default)}`);
    const description = typeof schema.description === 'string' ? `: ${schema.description}` : '';
    return [`    ${name}`, `${facts.join(', ')}${description}`];
  });
}

function kindOf(text: string): Kind {
  const singular = text.replace(/s$/, '') as Kind;
  if (KINDS.includes(singular)) return singular;
  throw new UsageError(`unknown kind "${text}"; kinds: ${KINDS.join(', ')}`, 'blocks');
}

export default defineCommand({
  name: 'blocks',
  summary: 'List every registered type (blocks, datasets, transforms, ...) with its parameters',
  description:
    'Lists what an experiment file may use: each registered type with its one-line description and ' +
    'its parameters (type, bounds, required, default). Give a TYPE for just that entry, --kind for one kind.',
  positionals: [{ name: 'TYPE', optional: true, description: 'Show only this type (e.g. dense)' }],
  options: {
    kind: { type: 'string', short: 'k', placeholder: 'KIND', description: `Only this kind: ${KINDS.join(', ')}` },
    brief: { type: 'boolean', default: false, description: 'One line per type, without parameters' },
    plugin: pluginOption,
  },
  examples: [
    ['exp blocks', 'Everything, grouped by kind'],
    ['exp blocks --kind transform --brief', 'The transform types, one per line'],
    ['exp blocks dense', 'The dense block and its parameters'],
    ['exp blocks --plugin examples/plugins/affine.ts affine', 'A plugin\'s block (tessera.config.yaml\'s plugins are always loaded)'],
  ],
  async run({ positionals, options }, context) {
    const { ENTRY_KINDS, didYouMean } = await import('@tessera/core');
    const registries = await registriesWithPlugins(context, options.plugin);
    const registryOf = (kind: Kind) => registries[ENTRY_KINDS[kind].registry];
    const kinds = options.kind === undefined ? [...KINDS] : [kindOf(options.kind)];
    const only = positionals[0];
    const sections: string[] = [];
    for (const kind of kinds) {
      const entries = registryOf(kind).list().filter((e) => only === undefined || e.type === only);
      if (entries.length === 0) continue;
      const body = options.brief
        ? table(entries.map((entry) => [entry.type, entry.description]))
        : entries
            .map((entry) => {
              const head = table([[entry.type, entry.description]]);
              const rows = parameterRows(entry);
              return rows.length > 0 ? `${head}\n${table(rows)}` : head;
            })
            .join('\n\n');
      sections.push(`${kind} types (${entries.length}):\n${body}`);
    }
    if (sections.length === 0 && only !== undefined) {
      const all = kinds.flatMap((kind) => registryOf(kind).types());
      const hint = didYouMean(only, all);
      throw new UsageError(`no registered type "${only}"${hint ? ` (did you mean "${hint}"?)` : ''}`, 'blocks');
    }
    context.stdout.write(`${sections.join('\n\n')}\n`);
  },
});
