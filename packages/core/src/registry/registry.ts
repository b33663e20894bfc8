import { closest, distance } from 'fastest-levenshtein';

/**
 * A JSON Schema object. Kept loose on purpose: entries hand us plain schemas, ajv checks them.
 */
export type JsonSchema = Record<string, unknown>;

/**
 * What every registry entry has: a unique `type` (the word users write in YAML), a one-line
 * description for `exp blocks`, and the JSON Schema of its parameters (an object schema whose
 * properties are the entry's own parameters, *without* `type`; the schema assembler adds `type`
 * and the keys that are common to every entry of a kind).
 */
export interface EntryBase {
  type: string;
  description: string;
  params: JsonSchema;
}

export class RegistryError extends Error {
  override name = 'RegistryError';
}

/** Suggest the closest known name, or nothing when no name is close enough to help. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, candidates as string[]);
  const limit = Math.max(2, Math.floor(best.length / 3));
  return distance(word, best) <= limit ? best : undefined;
}


/**
 * A closed, explicit registry of one kind of entry (blocks, datasets, transforms, ...).
 * Entries are added by an explicit `register` call, never as an import side effect;
 * a duplicate name throws; an unknown name lists the valid ones with a did-you-mean.
 */
export class Registry<E extends EntryBase> {
  private readonly entries = new Map<string, E>();

  constructor(readonly kind: string) {}

  register(entry: E): this {
    if (!/^[a-z][a-z0-9_]*$/.test(entry.type)) {
      throw new RegistryError(`${this.kind} type "${entry.type}" must be snake_case ([a-z][a-z0-9_]*)`);
    }
    if (this.entries.has(entry.type)) {
      throw new RegistryError(`${this.kind} type "${entry.type}" is already registered`);
    }
    this.entries.set(entry.type, entry);
    return this;
  }

  has(type: string): boolean {
    return this.entries.has(type);
  }

  get(type: string): E {
    const entry = this.entries.get(type);
    if (entry) return entry;
    const names = this.types();
    const hint = didYouMean(type, names);
    throw new RegistryError(
      `unknown ${this.kind} type "${type}"` +
        (hint ? ` (did you mean "${hint}"?)` : '') +
        `; valid types: ${names.join(', ')}`,
    );
  }

  types(): string[] {
    return [...this.entries.keys()].sort();
  }

  list(): E[] {
    return this.types().map((t) => this.entries.get(t)!);
  }
}
