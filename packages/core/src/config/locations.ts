import type { SourceLocation } from '../registry/kinds.ts';
import type { ConfigPath } from '../errors.ts';

// A path as a map key; numbers and digit strings meet, so ['layers', 3] and ['layers', '3'] agree.
const SEPARATOR = '\u0000';
const keyOf = (path: ConfigPath): string => path.map(String).join(SEPARATOR);

/**
 * Where each value (and each mapping key) of a merged config was written. Lookups fall back to
 * the nearest ancestor, so a value created by a merge or an alias still points somewhere useful.
 */
export class LocationMap {
  private readonly values = new Map<string, SourceLocation>();
  private readonly keys = new Map<string, SourceLocation>();

  setValue(path: ConfigPath, location: SourceLocation): void {
    this.values.set(keyOf(path), location);
  }

  setKey(path: ConfigPath, location: SourceLocation): void {
    this.keys.set(keyOf(path), location);
  }

  /** The value at `path`, or its nearest recorded ancestor. */
  value(path: ConfigPath): SourceLocation | undefined {
    for (let n = path.length; n >= 0; n--) {
      const found = this.values.get(keyOf(path.slice(0, n)));
      if (found) return found;
    }
    return undefined;
  }

  /** The key that introduces `path` (for "unknown key" errors); falls back to the value. */
  key(path: ConfigPath): SourceLocation | undefined {
    return this.keys.get(keyOf(path)) ?? this.value(path);
  }

  /** Forgets `path` and everything under it (a merge or override replaces the whole value). */
  deleteUnder(path: ConfigPath): void {
    const prefix = keyOf(path);
    for (const map of [this.values, this.keys]) {
      for (const k of [...map.keys()]) {
        if (path.length === 0 || k === prefix || k.startsWith(prefix + SEPARATOR)) map.delete(k);
      }
    }
  }

  /** Copies the entries of `other` at or under `path`. */
  copyUnder(other: LocationMap, path: ConfigPath): void {
    const prefix = keyOf(path);
    const pairs: [Map<string, SourceLocation>, Map<string, SourceLocation>][] = [
      [other.values, this.values],
      [other.keys, this.keys],
    ];
    for (const [from, to] of pairs) {
      for (const [k, location] of from) {
        if (path.length === 0 || k === prefix || k.startsWith(prefix + SEPARATOR)) to.set(k, location);
      }
    }
  }
}
