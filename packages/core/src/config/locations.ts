import type { SourceLocation } from '../registry/kinds.ts';
import type { ConfigPath } from '../errors.ts';

/** One level of the map: where the value and the key at this path were written, and below it. */
interface LocationNode {
  value?: SourceLocation;
  key?: SourceLocation;
  children?: Map<string, LocationNode>;
}

/**
 * Where each value (and each mapping key) of a merged config was written. Lookups fall back to
 * the nearest ancestor, so a value created by a merge or an alias still points somewhere useful.
 *
 * A tree keyed by path segment, so that replacing or copying a subtree (a merge, an override)
 * costs the size of that subtree, not of the whole map: loading stays linear in the file size.
 * Numbers and digit strings meet, so ['layers', 3] and ['layers', '3'] agree.
 */
export class LocationMap {
  private readonly root: LocationNode = {};

  private node(path: ConfigPath, create: true): LocationNode;
  private node(path: ConfigPath, create: false): LocationNode | undefined;
  private node(path: ConfigPath, create: boolean): LocationNode | undefined {
    let current = this.root;
    for (const part of path) {
      const key = String(part);
      let next = current.children?.get(key);
      if (!next) {
        if (!create) return undefined;
        next = {};
        (current.children ??= new Map()).set(key, next);
      }
      current = next;
    }
    return current;
  }

  setValue(path: ConfigPath, location: SourceLocation): void {
    this.node(path, true).value = location;
  }

  setKey(path: ConfigPath, location: SourceLocation): void {
    this.node(path, true).key = location;
  }

  /** The value at `path`, or its nearest recorded ancestor. */
  value(path: ConfigPath): SourceLocation | undefined {
    let found = this.root.value;
    let current: LocationNode | undefined = this.root;
    for (const part of path) {
      current = current.children?.get(String(part));
      if (!current) break;
      if (current.value) found = current.value;
    }
    return found;
  }

  /** The key that introduces `path` (for "unknown key" errors); falls back to the value. */
  key(path: ConfigPath): SourceLocation | undefined {
    return this.node(path, false)?.key ?? this.value(path);
  }

  /** Forgets `path` and everything under it (a merge or override replaces the whole value). */
  deleteUnder(path: ConfigPath): void {
    if (path.length === 0) {
      delete this.root.value;
      delete this.root.key;
      delete this.root.children;
      return;
    }
    this.node(path.slice(0, -1), false)?.children?.delete(String(path[path.length - 1]));
  }

  /** Copies the entries of `other` at or under `path`. */
  copyUnder(other: LocationMap, path: ConfigPath): void {
    const source = other.node(path, false);
    if (!source) return;
    const target = this.node(path, true);
    const copy = (from: LocationNode, to: LocationNode): void => {
      if (from.value) to.value = from.value;
      if (from.key) to.key = from.key;
      for (const [key, child] of from.children ?? []) {
        let next = to.children?.get(key);
        if (!next) (to.children ??= new Map()).set(key, (next = {}));
        copy(child, next);
      }
    };
    copy(source, target);
  }
}
