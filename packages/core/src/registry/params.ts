import type { FromSchema, JSONSchema } from 'json-schema-to-ts';

/**
 * One source of truth per parameter. An entry declares its params ONCE, as a JSON Schema object
 * literal with `as const`; everything else is derived from it:
 *
 *   export const denseParams = {
 *     type: 'object', additionalProperties: false, required: ['units'],
 *     properties: {
 *       units: { type: 'integer', minimum: 1, description: 'Output width.' },
 *       axis: { type: 'integer', default: -1, description: 'Axis to mix.' },
 *     },
 *   } as const satisfies JsonSchema;
 *   export type DenseParams = FromSchema<typeof denseParams>;   // json-schema-to-ts: the TS type
 *   const DEFAULTS = defaultsOf(denseParams);                     // { axis: -1 }: the layer's defaults
 *
 * - The validator (schema/validate.ts, ajv `useDefaults`) writes each missing default into the
 *   config, so `create` always receives every defaulted param and the recorded config is what
 *   ran (`exp config` shows it).
 * - A layer class that programs may also construct directly (`new Dense({units})`) or that
 *   tfjs deserialises falls back to `DEFAULTS.x`, never to a literal of its own.
 * - The parametrised test over every registered primitive (models' primitives.test.ts) checks
 *   that a layer created from only the required params has exactly the schema's defaults; the
 *   same holds for core's optimizers, schedules and callbacks (engine/params.ts, checked by
 *   engine/register.test.ts). Transforms are checked by behaviour (data's augment/defaults.test.ts).
 * - Descriptions and defaults therefore appear once, in the schema, which is also what
 *   `exp schema` emits for editors and `exp blocks` prints.
 */

/**
 * The TS type of an entry's params schema written, as the registries want it, without `type`
 * (`{properties, required?, additionalProperties: false}`, `as const`). Defaulted params stay
 * optional: the validator fills them in a config, but a program may construct with only some.
 */
export type ParamsOf<S extends { properties: Readonly<Record<string, JSONSchema>> }> = FromSchema<
  { type: 'object'; additionalProperties: false; properties: S['properties']; required: S extends { required: infer R extends readonly string[] } ? R : [] },
  { keepDefaultedPropertiesOptional: true }
>;

/** The `default` of every property of an object schema that has one, typed from the literal schema. */
export type SchemaDefaults<S> = S extends { properties: infer P }
  ? { -readonly [K in keyof P as P[K] extends { default: unknown } ? K : never]: P[K] extends { default: infer D } ? Widen<D> : never }
  : never;

type Widen<T> = T extends string ? T : T extends number ? number : T extends boolean ? boolean : T;

/** The defaults an object schema declares (`properties.*.default`), for layer constructors. */
export function defaultsOf<S extends { properties: Record<string, unknown> }>(schema: S): SchemaDefaults<S> {
  const defaults: Record<string, unknown> = {};
  for (const [key, property] of Object.entries(schema.properties)) {
    if (property && typeof property === 'object' && 'default' in property) defaults[key] = (property as { default: unknown }).default;
  }
  return defaults as SchemaDefaults<S>;
}
