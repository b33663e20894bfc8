import type { EntryBase, JsonSchema, Registry } from '../registry/registry.ts';
import type { Registries } from '../registry/kinds.ts';
import { REQUIRED_TOP_LEVEL, topLevelProperties } from './sections.ts';

/** Each `$defs` union, the registry that fills it and the keys every entry of it accepts. */
export const ENTRY_KINDS = {
  block: { registry: 'blocks', common: { name: { type: 'string', description: 'Layer name (default: derived from the type and position).' } } },
  dataset: { registry: 'datasets', common: {} },
  transform: { registry: 'transforms', common: {} },
  optimizer: { registry: 'optimizers', common: {} },
  schedule: { registry: 'schedules', common: {} },
  callback: { registry: 'callbacks', common: {} },
} as const satisfies Record<string, { registry: keyof Registries; common: Record<string, JsonSchema> }>;

export type EntryKind = keyof typeof ENTRY_KINDS;

/** Which kind (and which entry) an assembled schema node stands for; read by error messages. */
const origins = new WeakMap<object, { kind: EntryKind; type?: string }>();

/** The kind of union (`block`, ...) or entry branch a schema node of `experimentSchema` is. */
export function schemaOrigin(node: unknown): { kind: EntryKind; type?: string } | undefined {
  return node !== null && typeof node === 'object' ? origins.get(node) : undefined;
}

function branch(kind: EntryKind, entry: EntryBase, common: Record<string, JsonSchema>): JsonSchema {
  const params = entry.params;
  const properties = (params.properties ?? {}) as Record<string, JsonSchema>;
  const required = (params.required ?? []) as string[];
  const node: JsonSchema = {
    ...params,
    type: 'object',
    description: entry.description,
    properties: { type: { const: entry.type }, ...common, ...properties },
    required: ['type', ...required.filter((key) => key !== 'type')],
    additionalProperties: false,
  };
  origins.set(node, { kind, type: entry.type });
  return node;
}

/**
 * The union of every registered entry of one kind, told apart by `type` with ajv's
 * `discriminator`, so a bad entry yields one error from its own branch, not one per branch.
 */
function union(kind: EntryKind, registry: Registry<EntryBase>, common: Record<string, JsonSchema>): JsonSchema {
  const entries = registry.list();
  const node: JsonSchema =
    entries.length === 0
      ? // Nothing registered: any entry is an error (reported as "no <kind> types are registered").
        { type: 'object', required: ['type'], properties: { type: { type: 'string' } }, not: {} }
      : { type: 'object', discriminator: { propertyName: 'type' }, oneOf: entries.map((entry) => branch(kind, entry, common)) };
  origins.set(node, { kind });
  return node;
}

/**
 * The JSON Schema of an experiment file (draft-07, with ajv's `discriminator` keyword), built
 * from what is registered. `exp schema` writes it for editors; `validateExperiment` checks with it.
 */
export function experimentSchema(registries: Registries): JsonSchema {
  const defs: Record<string, JsonSchema> = {};
  for (const [kind, { registry, common }] of Object.entries(ENTRY_KINDS)) {
    defs[kind] = union(kind as EntryKind, registries[registry] as unknown as Registry<EntryBase>, common);
  }
  defs.layers = { type: 'array', items: { $ref: '#/$defs/block' }, description: 'Nodes applied in sequence.' };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Tessera experiment',
    description: 'A declarative deep-learning experiment: data, model, training and tracking.',
    type: 'object',
    additionalProperties: false,
    required: REQUIRED_TOP_LEVEL,
    properties: topLevelProperties(),
    $defs: defs,
  };
}
