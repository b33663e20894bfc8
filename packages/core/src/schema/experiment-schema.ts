import { NAME_PATTERN } from '../graph/combinators.ts';
import type { EntryBase, JsonSchema, Registry } from '../registry/registry.ts';
import type { Registries } from '../registry/kinds.ts';
import { REQUIRED_TOP_LEVEL, topLevelProperties } from './sections.ts';

/** Each `$defs` union, the registry that fills it and the keys every entry of it accepts. */
export const ENTRY_KINDS = {
  block: {
    registry: 'blocks',
    common: { name: { type: 'string', pattern: NAME_PATTERN, description: 'Layer name (default: derived from the type and position).' } },
  },
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

/** What an unevaluated `${...}` looks like to an editor. */
const EXPRESSION: JsonSchema = { type: 'string', pattern: '\\$\\{.*\\}', description: 'A ${...} expression, evaluated when the file is loaded.' };

function acceptsExpressions(node: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...node };
  const nested = (value: unknown) => (value !== null && typeof value === 'object' && !Array.isArray(value) ? acceptsExpressions(value as JsonSchema) : value);
  if (out.properties) {
    const properties: Record<string, JsonSchema> = {};
    for (const [key, value] of Object.entries(out.properties as Record<string, JsonSchema>)) {
      // The `type` of an entry picks its schema: it must be written, never computed.
      const tag = key === 'type' && ('const' in value || Array.isArray(value.enum));
      properties[key] = tag ? value : acceptsExpressions(value);
    }
    out.properties = properties;
  }
  for (const key of ['items', 'additionalProperties', 'not']) if (key in out) out[key] = nested(out[key]);
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    if (Array.isArray(out[key])) out[key] = (out[key] as JsonSchema[]).map((branch) => acceptsExpressions(branch));
  }
  if (out.$defs) out.$defs = Object.fromEntries(Object.entries(out.$defs as Record<string, JsonSchema>).map(([k, v]) => [k, acceptsExpressions(v)]));
  const types = [out.type].flat();
  const scalar = types.some((t) => t === 'integer' || t === 'number' || t === 'boolean') || 'const' in out || Array.isArray(out.enum);
  if (!scalar) return out;
  const { description, default: fallback, ...rest } = out;
  return { ...(description !== undefined ? { description } : {}), ...(fallback !== undefined ? { default: fallback } : {}), anyOf: [rest, EXPRESSION] };
}

/**
 * The schema editors use (what `exp schema` writes): like `experimentSchema`, but every number,
 * boolean or enum value may also be a `${...}` expression, since editors see the file before
 * evaluation. Validation after loading uses the strict `experimentSchema`.
 */
export function editorSchema(registries: Registries): JsonSchema {
  const schema = acceptsExpressions(experimentSchema(registries));
  // A file that extends a base may leave out whole sections, or keys of a section, that the
  // base provides; only the merged result must be complete.
  const { required: _required, ...rest } = schema;
  const properties = { ...(rest.properties as Record<string, JsonSchema>) };
  for (const [key, section] of Object.entries(properties)) {
    if (section.type === 'object' && !('$ref' in section)) {
      const { required: _sectionRequired, ...open } = section;
      properties[key] = open;
    }
  }
  // For the same reason an entry may omit its `type` (`optimizer: {learning_rate: 0.01}` over a
  // base's adamw): editors get a plain anyOf, without ajv's discriminator.
  const defs = { ...(rest.$defs as Record<string, JsonSchema>) };
  for (const kind of Object.keys(ENTRY_KINDS)) {
    const { discriminator: _discriminator, oneOf, ...union } = defs[kind]!;
    if (!Array.isArray(oneOf)) continue;
    const branches = (oneOf as JsonSchema[]).map((branch) => ({ ...branch, required: (branch.required as string[]).filter((key) => key !== 'type') }));
    defs[kind] = { ...union, anyOf: branches };
  }
  return { ...rest, properties, $defs: defs };
}
