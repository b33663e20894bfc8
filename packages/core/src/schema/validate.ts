import { SAFE_NAME_PATTERN, unsafeNameReason } from '../safety/paths.ts';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { describeOrigin, type ValueOrigin } from '../config/resolve.ts';
import { ConfigError, describeValue, OVERRIDE_PREFIX, throwIfAny, type ConfigPath } from '../errors.ts';
import { didYouMean, type EntryBase, type JsonSchema, type Registry } from '../registry/registry.ts';
import { createRegistries, type Registries, type SourceLocation } from '../registry/kinds.ts';
import { editorSchema, ENTRY_KINDS, experimentSchema, schemaOrigin } from './experiment-schema.ts';
import type { ExperimentConfig } from './types.ts';

/* ------------------------------------------------------------------------------------------ *
 * Validation: ajv checks the resolved config against the assembled schema; each error is      *
 * mapped from its instancePath to the file:line:col the value came from, and small handlers   *
 * turn ajv's wording into plain sentences with hints (did-you-mean, the YAML yes/no trap).    *
 * ------------------------------------------------------------------------------------------ */

const compiled = new WeakMap<Registries, { signature: string; ajv: Ajv }>();
/** The key the assembled experiment schema is added under; its parts are checked as `${EXPERIMENT}#/...`. */
const EXPERIMENT = 'experiment';

function signatureOf(registries: Registries): string {
  return Object.values(ENTRY_KINDS)
    .map(({ registry }) => registries[registry].types().join(','))
    .join('|');
}

/** The Ajv holding the experiment schema for these registries (rebuilt when an entry is registered). */
function schemaFor(registries: Registries): Ajv {
  const signature = signatureOf(registries);
  const cached = compiled.get(registries);
  if (cached?.signature === signature) return cached.ajv;
  const ajv = new Ajv({ allErrors: true, discriminator: true, strict: true, verbose: true, allowUnionTypes: true, useDefaults: true });
  ajv.addSchema(experimentSchema(registries), EXPERIMENT);
  compiled.set(registries, { signature, ajv });
  return ajv;
}

/** The compiled validator for these registries (recompiled when an entry is registered). */
export function experimentValidator(registries: Registries): ValidateFunction {
  return schemaFor(registries).getSchema(EXPERIMENT)!;
}

/**
 * Checks one part of an experiment with the experiment's own schema: the `model` section, or a
 * list of layer nodes (a template instance, evaluated by the graph's instantiation step). `at` is
 * the part's path; the errors are worded and located exactly as `validateExperiment`'s, so one
 * mistake reads the same wherever it is found.
 */
export function validateExperimentPart(part: 'model' | 'layers', value: unknown, at: ConfigPath, loaded: Locator, registries: Registries): ConfigError[] {
  const validate = schemaFor(registries).getSchema(`${EXPERIMENT}#${part === 'model' ? '/properties/model' : '/$defs/layers'}`)!;
  if (validate(value)) return [];
  return explainErrors(validate.errors ?? [], loaded, registries, { root: value, at });
}

const withDefaults = new WeakMap<Registries, { signature: string; validate: ValidateFunction }>();

/**
 * The config as it ran: a copy of a valid config with every default of the schema filled in
 * (ajv's useDefaults, which also reaches into the `type` discriminator's branches), so a run
 * records `from_logits: true` even when the file left it out.
 */
export function effectiveConfig(config: ExperimentConfig, registries: Registries): ExperimentConfig {
  const signature = signatureOf(registries);
  let cached = withDefaults.get(registries);
  if (cached?.signature !== signature) {
    // strict: false: ajv would refuse defaults it cannot apply (inside anyOf); those stay unfilled.
    const ajv = new Ajv({ discriminator: true, strict: false, allowUnionTypes: true, useDefaults: true });
    cached = { signature, validate: ajv.compile(experimentSchema(registries)) };
    withDefaults.set(registries, cached);
  }
  const copy = structuredClone(config);
  cached.validate(copy);
  return copy;
}

const documentValidators = new WeakMap<JsonSchema, ValidateFunction>();

/**
 * Checks another YAML document of Tessera's (a sweep file) against its own schema, with the
 * experiment validator's settings and `explainErrors`' wording, so a mistake there reads like
 * one in an experiment. Throws ConfigError(s). The schema may not use the registries' `type`
 * unions (the errors are explained with an empty set of registries); keep passing the same
 * schema object: it is compiled once.
 */
export function validateDocument(schema: JsonSchema, loaded: Locator): void {
  let validate = documentValidators.get(schema);
  if (!validate) {
    validate = new Ajv({ allErrors: true, strict: true, verbose: true, allowUnionTypes: true }).compile(schema);
    documentValidators.set(schema, validate);
  }
  if (!validate(loaded.config)) throwIfAny(explainErrors(validate.errors ?? [], loaded, createRegistries()));
}

/** Checks a file as written (before extends and evaluation) the way an editor would. */
export function editorValidator(registries: Registries): ValidateFunction {
  return new Ajv({ allErrors: true, discriminator: true, strict: true, allowUnionTypes: true }).compile(editorSchema(registries));
}

/**
 * Checks a loaded experiment against the schema assembled from `registries`. Returns the config
 * when it is valid; otherwise throws every problem at once (ConfigErrors), one per bad node,
 * each located in the file (or `--set` argument) its value came from.
 */
export function validateExperiment(loaded: Locator, registries: Registries): ExperimentConfig {
  const validate = experimentValidator(registries);
  if (validate(loaded.config)) return loaded.config as unknown as ExperimentConfig;
  // `--set name=123` means the text "123" when the schema wants a string: an override's YAML value
  // is typed by the schema. Values written in files are never coerced.
  if (coerceOverrides(validate.errors ?? [], loaded) && validate(loaded.config)) return loaded.config as unknown as ExperimentConfig;
  throwIfAny(explainErrors(validate.errors ?? [], loaded, registries));
  return loaded.config as unknown as ExperimentConfig;
}

function coerceOverrides(errors: readonly ErrorObject[], loaded: Locator): boolean {
  let changed = false;
  for (const error of errors) {
    const wantsString = error.keyword === 'type' && String(error.params.type).split(',').includes('string');
    if (!wantsString || (typeof error.data !== 'number' && typeof error.data !== 'boolean')) continue;
    const path = toPath(error.instancePath, loaded.config);
    if (path.length === 0 || !loaded.locate(path)?.file.startsWith(OVERRIDE_PREFIX)) continue;
    const parent = path.slice(0, -1).reduce<unknown>((value, key) => (value as Record<string | number, unknown>)[key], loaded.config);
    (parent as Record<string | number, unknown>)[path[path.length - 1]!] = String(error.data);
    changed = true;
  }
  return changed;
}

/** What error explanations need of a loaded config: the values, where they were written, how they were computed. */
export interface Locator {
  config: Record<string, unknown>;
  locate(path: ConfigPath): SourceLocation | undefined;
  locateKey(path: ConfigPath): SourceLocation | undefined;
  origin?(path: ConfigPath): ValueOrigin | undefined;
}

// Errors about a value (not about keys) get a note on the expression that computed it.
export const VALUE_KEYWORDS = new Set(['type', 'minimum', 'exclusiveMinimum', 'maximum', 'exclusiveMaximum', 'enum', 'const', 'pattern', 'multipleOf']);

function withOrigin(error: ConfigError, keyword: string, loaded: Locator): ConfigError {
  const origin = VALUE_KEYWORDS.has(keyword) ? loaded.origin?.(error.path) : undefined;
  if (!origin) return error;
  const note = describeOrigin(origin);
  return new ConfigError({
    location: error.location,
    path: error.path,
    message: error.detail,
    hint: error.hint ? `${error.hint}; ${note}` : note,
  });
}

/**
 * Turns ajv errors into ConfigErrors: one per bad node, located, in plain words. By default the
 * errors are about `loaded.config`; to explain errors of a schema applied to one node of it (say
 * a template instance), pass that node as `root` and its path as `at`. The errors must come from
 * an Ajv created with `verbose: true` (the handlers read each error's schema and data).
 */
export function explainErrors(
  errors: readonly ErrorObject[],
  loaded: Locator,
  registries: Registries,
  options: { root?: unknown; at?: ConfigPath } = {},
): ConfigError[] {
  const root = options.root ?? loaded.config;
  const at = options.at ?? [];
  const out = new Map<string, ConfigError>();
  const missing = new Map<string, { path: ConfigPath; keys: string[]; kind: string }>();
  const suppressed = suppressedByUnions(errors);
  for (const error of errors) {
    if (suppressed.has(error) || error.keyword === 'if' || error.keyword === 'propertyNames') continue;
    const path = [...at, ...toPath(error.instancePath, root)];
    if (error.keyword === 'required') {
      const key = JSON.stringify(path);
      const entry = missing.get(key) ?? { path, keys: [], kind: entryLabel(error) };
      entry.keys.push(String(error.params.missingProperty));
      missing.set(key, entry);
      continue;
    }
    const explained = withOrigin(explain(error, path, loaded, registries, errors), error.keyword, loaded);
    const key = JSON.stringify(explained.path);
    if (!out.has(key)) out.set(key, explained);
  }
  // `{type: dense, unit: 8}` is one mistake: "unknown key unit (did you mean units?)" says it all.
  const misspelled = new Map<string, Set<string>>();
  for (const error of out.values()) {
    const suggestion = /^did you mean "([^"]+)"/.exec(error.hint ?? '')?.[1];
    if (suggestion && error.detail.startsWith('unknown key')) {
      const parent = JSON.stringify(error.path.slice(0, -1));
      misspelled.set(parent, (misspelled.get(parent) ?? new Set()).add(suggestion));
    }
  }
  for (const [key, entry] of missing) {
    if (out.has(key)) continue; // e.g. an unknown block type already explains the missing keys
    const keys = entry.keys.filter((k) => !misspelled.get(key)?.has(k));
    if (keys.length === 0) continue;
    const { path, kind } = entry;
    const list = keys.map((k) => `"${k}"`).join(', ');
    out.set(key, new ConfigError({ location: loaded.locate(path), path, message: `missing required key${keys.length > 1 ? 's' : ''} ${list}${kind}` }));
  }
  return [...out.values()];
}

/** JSON pointer -> path; a segment is a number where the value there is a list. */
function toPath(pointer: string, root: unknown): (string | number)[] {
  if (pointer === '') return [];
  const path: (string | number)[] = [];
  let value = root;
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    const part = Array.isArray(value) && /^\d+$/.test(segment) ? Number(segment) : segment;
    path.push(part);
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[segment] : undefined;
  }
  return path;
}

/** ` for block type "dense"` when the error comes from one registered entry's branch. */
function entryLabel(error: ErrorObject): string {
  const origin = schemaOrigin(error.parentSchema);
  return origin?.type ? ` for ${origin.kind} type "${origin.type}"` : '';
}

/** Errors from inside an anyOf/oneOf's branches: the union's own error explains them. */
function suppressedByUnions(errors: readonly ErrorObject[]): Set<ErrorObject> {
  const suppressed = new Set<ErrorObject>();
  for (const union of errors) {
    if (union.keyword !== 'anyOf' && union.keyword !== 'oneOf') continue;
    for (const error of errors) {
      if (error !== union && error.schemaPath.startsWith(`${union.schemaPath}/`)) suppressed.add(error);
    }
  }
  return suppressed;
}

const PLAIN_TYPES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  null: 'null',
};

/** `an integer`, `a mapping or a list`: a JSON Schema type in words. */
export const plainType = (type: unknown): string =>
  String(type)
    .split(',')
    .map((t) => PLAIN_TYPES[t] ?? t)
    .join(' or ');

const YAML_BOOLEAN_TRAP = /^(y|n|yes|no|on|off)$/i;

function explain(error: ErrorObject, path: ConfigPath, loaded: Locator, registries: Registries, all: readonly ErrorObject[]): ConfigError {
  const location = loaded.locate(path);
  const data: unknown = error.data;
  const params = error.params as Record<string, unknown>;
  const label = entryLabel(error);
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const keyPath = [...path, key];
      const allowed = Object.keys((error.parentSchema?.properties as object | undefined) ?? {});
      const hint = didYouMean(key, allowed);
      const valid = allowed.length > 0 ? `valid keys: ${allowed.join(', ')}` : 'no keys are allowed here';
      return new ConfigError({
        location: loaded.locateKey(keyPath),
        path: keyPath,
        message: `unknown key "${key}"${label}`,
        hint: hint ? `did you mean "${hint}"? (${valid})` : valid,
      });
    }
    case 'discriminator': {
      const kind = schemaOrigin(error.parentSchema)?.kind ?? 'block';
      const registry = registries[ENTRY_KINDS[kind].registry] as unknown as Registry<EntryBase>;
      const types = registry.types();
      const valid = `valid ${kind} types: ${types.join(', ')}`;
      if (params.error === 'tag' && params.tagValue === undefined) {
        return new ConfigError({ location, path, message: `missing required key "type" (which ${kind} this is)`, hint: valid });
      }
      const typePath = [...path, 'type'];
      const tag = params.tagValue;
      if (typeof tag !== 'string') {
        return new ConfigError({ location: loaded.locate(typePath), path: typePath, expected: `a ${kind} type name`, found: describeValue(tag) });
      }
      const hint = didYouMean(tag, types);
      return new ConfigError({
        location: loaded.locate(typePath),
        path: typePath,
        message: `unknown ${kind} type "${tag}"`,
        hint: hint ? `did you mean "${hint}"? (${valid})` : valid,
      });
    }
    case 'not': {
      const kind = schemaOrigin(error.parentSchema)?.kind;
      if (kind) return new ConfigError({ location, path, message: `no ${kind} types are registered, so no ${kind} can be used here` });
      break;
    }
    case 'type': {
      const expected = plainType(params.type);
      const trap = String(params.type).includes('boolean') && typeof data === 'string' && YAML_BOOLEAN_TRAP.test(data);
      return new ConfigError({
        location,
        path,
        expected,
        found: describeValue(data),
        hint: trap ? `YAML 1.2 reads ${data} as text; write true or false` : undefined,
      });
    }
    case 'exclusiveMinimum':
    case 'minimum':
    case 'exclusiveMaximum':
    case 'maximum': {
      const op = { exclusiveMinimum: '>', minimum: '>=', exclusiveMaximum: '<', maximum: '<=' }[error.keyword];
      return new ConfigError({ location, path, expected: `a value ${op} ${params.limit}`, found: describeValue(data) });
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v));
      const hint = typeof data === 'string' ? didYouMean(data, (params.allowedValues as unknown[]).map(String)) : undefined;
      const trap = typeof data === 'string' && YAML_BOOLEAN_TRAP.test(data) && allowed.includes('true');
      return new ConfigError({
        location,
        path,
        expected: `one of ${allowed.join(', ')}`,
        found: describeValue(data),
        hint: hint ? `did you mean "${hint}"?` : trap ? `YAML 1.2 reads ${data} as text; write true or false` : undefined,
      });
    }
    case 'const':
      return new ConfigError({ location, path, expected: JSON.stringify(params.allowedValue), found: describeValue(data) });
    case 'minItems':
    case 'maxItems': {
      const bound = error.keyword === 'minItems' ? 'at least' : 'at most';
      return new ConfigError({ location, path, expected: `a list of ${bound} ${params.limit} items`, found: describeValue(data) });
    }
    case 'pattern':
      if (error.propertyName !== undefined) {
        const keyPath = [...path, error.propertyName];
        return new ConfigError({ location: loaded.locateKey(keyPath), path: keyPath, message: `invalid name "${error.propertyName}"`, hint: `names match ${params.pattern}` });
      }
      if (params.pattern === SAFE_NAME_PATTERN && typeof data === 'string') {
        // Names are data, not paths: say why, not the regex.
        return new ConfigError({ location, path, message: `${describeValue(data)} cannot be a name: ${unsafeNameReason(data)}`, hint: 'names become one directory of the run store and may not contain a path' });
      }
      return new ConfigError({ location, path, expected: `a string matching ${params.pattern}`, found: describeValue(data) });
    case 'minLength':
      return new ConfigError({ location, path, expected: params.limit === 1 ? 'a non-empty string' : `a string of at least ${params.limit} characters`, found: describeValue(data) });
    case 'uniqueItems':
      return new ConfigError({ location, path, message: `items ${params.j} and ${params.i} are the same; each may appear once` });
    case 'anyOf':
    case 'oneOf': {
      const branches = all.filter((e) => e.schemaPath.startsWith(`${error.schemaPath}/`) && e.keyword === 'type');
      if (branches.length > 0) {
        const expected = [...new Set(branches.map((e) => plainType(e.params.type)))].join(' or ');
        return new ConfigError({ location, path, expected, found: describeValue(data) });
      }
      break;
    }
  }
  return new ConfigError({ location, path, message: `${error.message ?? 'is invalid'}${label}` });
}
