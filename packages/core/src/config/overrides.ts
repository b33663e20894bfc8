import { ConfigError, OVERRIDE_PREFIX, describeValue, formatPath } from '../errors.ts';
import { didYouMean } from '../registry/registry.ts';
import type { SourceLocation } from '../registry/kinds.ts';
import type { LocationMap } from './locations.ts';
import { isPlainObject, setOwn } from './plain.ts';
import { parseYamlDocument, toPlain } from './source.ts';

/** One `--set` argument, parsed. */
export interface Override {
  /** `model.layers[2].units` as ['model', 'layers', 2, 'units']; digit segments are numbers. */
  path: (string | number)[];
  value: unknown;
  /**
   * As in Hydra: `a.b=1` sets (a key that does not exist yet is added unless its name is close to
   * an existing one: a typo); `+a.b=1` adds a key that must not exist; `++a.b=1` sets it whether
   * it exists or not; `~a.b` (or `~a.b=1`, only if it has that value) deletes it.
   */
  mode: 'set' | 'add' | 'force' | 'delete';
  /** `~a.b=1`: the value the key must have to be deleted. */
  hasValue: boolean;
  /** Where errors about this override point: the argument itself. */
  location: SourceLocation;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Parses `[+]a.b[2].c=<yaml>`; the value is YAML, so `3` is a number and `[1, 2]` a list. */
export function parseOverride(argument: string): Override {
  const location: SourceLocation = { file: `${OVERRIDE_PREFIX}${argument}`, line: 1, col: 1 };
  const fail = (message: string, hint?: string): never => {
    throw new ConfigError({ location, message, hint });
  };
  const mode = argument.startsWith('++') ? 'force' : argument.startsWith('+') ? 'add' : argument.startsWith('~') ? 'delete' : 'set';
  const prefix = mode === 'force' ? 2 : mode === 'set' ? 0 : 1;
  const equals = argument.indexOf('=');
  if (equals < 0 && mode !== 'delete') fail('expected KEY=VALUE, e.g. --set train.epochs=3 (or ~KEY to delete a key)');
  const keyText = argument.slice(prefix, equals < 0 ? undefined : equals).trim();
  if (/^[+~]/.test(keyText)) {
    fail(`"${argument.slice(0, prefix + 1)}" is not an override prefix`, 'write KEY=VALUE to set, +KEY=VALUE to add, ++KEY=VALUE to add or set, ~KEY to delete (as in Hydra)');
  }
  if (keyText === '') fail('the key before "=" is empty');
  const path: (string | number)[] = [];
  for (const segment of keyText.split('.')) {
    const match = /^([^[\]]*)((?:\[\d+\])*)$/.exec(segment);
    if (!match || (match[1] === '' && match[2] === '')) fail(`malformed key "${keyText}"`, 'write keys like model.layers[2].units or model.layers.2.units');
    const [, name, indices] = match!;
    if (name) path.push(/^\d+$/.test(name) ? Number(name) : name);
    for (const index of indices!.matchAll(/\[(\d+)\]/g)) path.push(Number(index[1]));
  }
  for (const part of path) if (typeof part === 'string' && FORBIDDEN_KEYS.has(part)) fail(`the key "${part}" is not allowed`);
  // Bases are merged before overrides apply, so overriding them could only be silently ignored.
  if (path[0] === 'extends') fail('extends cannot be overridden (bases are merged before --set applies)', 'write a small file that extends the ones you want');
  if (equals < 0) return { path, value: undefined, mode, hasValue: false, location };
  const { doc, at } = parseYamlDocument(argument.slice(equals + 1), location.file);
  const value = toPlain(doc, location.file, at);
  return { path, value, mode, hasValue: true, location };
}

/** Applies overrides in order to a merged config (before `${...}` evaluation). */
export function applyOverrides(config: Record<string, unknown>, locations: LocationMap, argumentsList: readonly string[]): void {
  for (const argument of argumentsList) applyOverride(config, locations, parseOverride(argument));
}

export function applyOverride(config: Record<string, unknown>, locations: LocationMap, override: Override): void {
  const { path, location } = override;
  let container: unknown = config;
  for (let depth = 0; depth < path.length; depth++) {
    const part = path[depth]!;
    const here = path.slice(0, depth);
    const last = depth === path.length - 1;
    if (Array.isArray(container)) {
      if (typeof part !== 'number') {
        throw new ConfigError({ location, path: here, message: `is a list; index it with a number, e.g. ${formatPath([...here, 0])}` });
      }
      if (part >= container.length) {
        throw new ConfigError({ location, path: here, message: `index ${part} is out of range; the list has ${container.length} item${container.length === 1 ? '' : 's'}` });
      }
      if (last && override.mode === 'delete') {
        container.splice(part, 1);
        locations.deleteUnder(here);
        return;
      }
      if (last && override.mode === 'add') {
        throw new ConfigError({ location, path, message: 'cannot add: the list already has this item', hint: `to change it write --set ${formatPath(path)}=...` });
      }
      if (last) container[part] = override.value;
      else container = container[part];
      continue;
    }
    if (!isPlainObject(container)) {
      throw new ConfigError({ location, path: here, message: `is ${describeValue(container)}, so it has no key "${part}"` });
    }
    const key = String(part);
    const exists = Object.hasOwn(container, key);
    if (last && override.mode === 'add' && exists) {
      throw new ConfigError({
        location,
        path,
        message: `cannot add: the key already exists (value ${describeValue(container[key])})`,
        hint: `to change it write --set ${formatPath(path)}=..., or --set ++${formatPath(path)}=... to set it either way`,
      });
    }
    if (override.mode === 'delete') {
      if (!exists) {
        const hint = didYouMean(key, Object.keys(container));
        throw new ConfigError({ location, path: [...here, key], message: 'no such key to delete', ...(hint ? { hint: `did you mean "${hint}"?` } : {}) });
      }
      if (!last) {
        container = container[key];
        continue;
      }
      if (override.hasValue && JSON.stringify(container[key]) !== JSON.stringify(override.value)) {
        throw new ConfigError({ location, path, message: `not deleted: its value is ${describeValue(container[key])}, not ${describeValue(override.value)}` });
      }
      delete container[key];
      locations.deleteUnder(path);
      return;
    }
    if (!exists) {
      const hint = didYouMean(key, Object.keys(container));
      if (hint && override.mode === 'set') {
        throw new ConfigError({
          location,
          path: [...here, key],
          message: `no such key to override`,
          hint: `did you mean "${hint}"? (to add a new key, write --set +${formatPath(path)}=...)`,
        });
      }
      if (!last) setOwn(container, key, {});
    }
    if (last) setOwn(container, key, override.value);
    else container = container[key];
  }
  locations.deleteUnder(path);
  locations.setValue(path, location);
  locations.setKey(path, location);
}
