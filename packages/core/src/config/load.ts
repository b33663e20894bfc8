import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, relative, resolve } from 'node:path';
import { ConfigError, describeValue, type ConfigPath } from '../errors.ts';
import { didYouMean } from '../registry/registry.ts';
import type { SourceLocation } from '../registry/kinds.ts';
import { LocationMap } from './locations.ts';
import { applyOverrides } from './overrides.ts';
import { isPlainObject, setOwn } from './plain.ts';
import { resolveExpressions, type ValueOrigin } from './resolve.ts';
import { parseYamlFile, type ParsedFile } from './source.ts';

/** A loaded experiment: the resolved config and where each of its values was written. */
export interface LoadedConfig {
  /** Absolute path of the experiment file. */
  file: string;
  /** Merged (extends), overridden (--set) and evaluated (${...}); templates stay raw. */
  config: Record<string, unknown>;
  /** Where the value at `path` was written (nearest recorded ancestor; the file's start at worst). */
  locate(path: ConfigPath): SourceLocation;
  /** Where the key that introduces `path` was written (for "unknown key" errors). */
  locateKey(path: ConfigPath): SourceLocation;
  /** How the value at `path` was computed, when it came from a `${...}` expression. */
  origin?(path: ConfigPath): ValueOrigin | undefined;
  /** Every file read, bases first, the experiment file last. */
  files: string[];
  /** The `--set` arguments, as given. */
  overrides: string[];
}

export interface LoadOptions {
  /** `a.b.c=value` strings (the text after `--set`), applied in order after merging. */
  overrides?: readonly string[];
}

/**
 * Loads an experiment file: reads it and its `extends:` bases (deep-merged in order, then the
 * file itself), applies `--set` overrides, then evaluates `vars` and every `${...}` except in
 * `model.blocks.<name>.layers` (templates, instantiated later by the graph builder).
 * Throws ConfigError, always located. Schema validation is separate: `validateExperiment`.
 */
export function loadExperiment(file: string, options: LoadOptions = {}): LoadedConfig {
  const absolute = resolve(file);
  if (!existsSync(absolute)) {
    throw new ConfigError({ message: `experiment file "${file}" not found`, hint: nearbyFileHint(absolute) });
  }
  if (statSync(absolute).isDirectory()) throw new ConfigError({ message: `"${file}" is a directory, not an experiment file` });
  const files: string[] = [];
  const merged = loadWithBases(absolute, [], files);
  const overrides = [...(options.overrides ?? [])];
  applyOverrides(merged.value, merged.locations, overrides);
  const resolved = resolveExpressions(merged.value, merged.locations);
  const config = canonicalOrder(resolved.config);
  const start: SourceLocation = { file: absolute, line: 1, col: 1 };
  return {
    file: absolute,
    config,
    locate: (path) => merged.locations.value(path) ?? start,
    locateKey: (path) => merged.locations.key(path) ?? start,
    origin: resolved.origin,
    files,
    overrides,
  };
}

function loadWithBases(file: string, chain: string[], files: string[], via?: { location: SourceLocation; path: ConfigPath }): ParsedFile {
  const parsed = parseYamlFile(file, via);
  const merged: ParsedFile = { file, value: {}, locations: new LocationMap() };
  for (const base of baseEntries(parsed)) {
    const target = resolve(dirname(file), base.path);
    if (target === file || chain.includes(target)) {
      const from = chain.indexOf(target);
      const cycle = [...(from >= 0 ? chain.slice(from) : []), file, target].map((f) => relative(process.cwd(), f) || f);
      throw new ConfigError({ location: base.location, path: base.yamlPath, message: `extends cycle: ${cycle.join(' -> ')}` });
    }
    if (!existsSync(target) || statSync(target).isDirectory()) {
      throw new ConfigError({
        location: base.location,
        path: base.yamlPath,
        message: `base file "${base.path}" not found (looked for ${relative(process.cwd(), target) || target})`,
        hint: nearbyFileHint(target),
      });
    }
    mergeInto(merged, loadWithBases(target, [...chain, file], files, { location: base.location, path: base.yamlPath }));
  }
  delete parsed.value.extends;
  parsed.locations.deleteUnder(['extends']);
  mergeInto(merged, parsed);
  files.push(file);
  return merged;
}

// The order a reader expects, whatever order the bases and the file wrote the sections in.
const SECTION_ORDER = ['name', 'description', 'seed', 'backend', 'vars', 'data', 'model', 'train', 'tracking'];

function canonicalOrder(config: Record<string, unknown>): Record<string, unknown> {
  const rank = (key: string) => (SECTION_ORDER.includes(key) ? SECTION_ORDER.indexOf(key) : SECTION_ORDER.length);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(config).sort((a, b) => rank(a) - rank(b))) setOwn(out, key, config[key]);
  return out;
}

function baseEntries(parsed: ParsedFile): { path: string; location: SourceLocation; yamlPath: ConfigPath }[] {
  const raw = parsed.value.extends;
  if (raw === undefined || raw === null) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  return list.map((entry, index) => {
    const yamlPath = Array.isArray(raw) ? ['extends', index] : ['extends'];
    const location = parsed.locations.value(yamlPath)!;
    if (typeof entry !== 'string' || entry.trim() === '') {
      throw new ConfigError({ location, path: yamlPath, expected: 'a relative path to a base YAML file', found: describeValue(entry) });
    }
    return { path: entry, location, yamlPath };
  });
}

/** Deep merge: mappings merge key by key; lists and scalars from `source` replace. */
function mergeInto(target: ParsedFile, source: ParsedFile): void {
  target.locations.setValue([], source.locations.value([])!);
  mergeMaps(target.value, target.locations, source.value, source.locations, []);
}

function mergeMaps(
  target: Record<string, unknown>,
  targetLocations: LocationMap,
  source: Record<string, unknown>,
  sourceLocations: LocationMap,
  path: (string | number)[],
): void {
  for (const [key, value] of Object.entries(source)) {
    const at = [...path, key];
    const existing = target[key];
    if (Object.hasOwn(target, key) && isPlainObject(existing) && isPlainObject(value)) {
      const keyLocation = sourceLocations.key(at);
      if (keyLocation) targetLocations.setKey(at, keyLocation);
      const valueLocation = sourceLocations.value(at);
      if (valueLocation) targetLocations.setValue(at, valueLocation);
      mergeMaps(existing, targetLocations, value, sourceLocations, at);
    } else {
      setOwn(target, key, structuredClone(value));
      targetLocations.deleteUnder(at);
      targetLocations.copyUnder(sourceLocations, at);
    }
  }
}

function nearbyFileHint(target: string): string | undefined {
  const dir = dirname(target);
  if (!existsSync(dir)) return undefined;
  const candidates = readdirSync(dir).filter((name) => /\.ya?ml$/.test(name));
  const hint = didYouMean(basename(target), candidates);
  return hint ? `did you mean "${relative(process.cwd(), resolve(dir, hint))}"?` : undefined;
}
