import { ConfigError, describeValue, formatLocation, type ConfigPath } from '../errors.ts';
import type { SourceLocation } from '../registry/kinds.ts';
import { ExpressionError, interpolate, MAX_EXPRESSION_VALUE_SIZE, type Scope } from './expression.ts';
import type { LocationMap } from './locations.ts';
import { isPlainObject, setOwn } from './plain.ts';

/** True for `model.blocks.<name>.layers` and below: templates the graph builder instantiates. */
export function isTemplatePath(path: ConfigPath): boolean {
  return path.length >= 4 && path[0] === 'model' && path[1] === 'blocks' && path[3] === 'layers';
}

/** What expressions see: names, their values, and where each was defined (for hints). */
interface ResolvingScope extends Scope {
  where(name: string): SourceLocation | undefined;
}

/**
 * Variables of one level (`vars` or `model.vars`), resolved lazily on first use so they may
 * refer to each other in any order; a variable that needs itself is a located cycle error.
 * A `model.vars` entry may use the top-level variable it shadows (`dim: ${dim * 2}`).
 */
class VariableScope implements ResolvingScope {
  private readonly resolved = new Map<string, unknown>();

  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly path: ConfigPath,
    private readonly parent: VariableScope | undefined,
    private readonly context: Resolver,
  ) {}

  has(name: string): boolean {
    return Object.hasOwn(this.raw, name) || (this.parent?.has(name) ?? false);
  }

  names(): string[] {
    return [...new Set([...Object.keys(this.raw), ...(this.parent?.names() ?? [])])];
  }

  get(name: string): unknown {
    if (!Object.hasOwn(this.raw, name)) return this.parent?.get(name);
    if (this.resolved.has(name)) return this.resolved.get(name);
    const path = [...this.path, name];
    const stack = this.context.resolving;
    const index = stack.findIndex((entry) => entry.scope === this && entry.name === name);
    if (index >= 0) {
      const cycle = [...stack.slice(index).map((entry) => entry.name), name];
      throw new ConfigError({
        location: this.context.locations.value(path),
        path,
        message: cycle.length === 2 ? `variable "${name}" refers to itself` : `variable cycle: ${cycle.join(' -> ')}`,
      });
    }
    stack.push({ scope: this, name });
    try {
      const value = this.context.resolve(this.raw[name], path, this.shadowing(name));
      this.resolved.set(name, value);
      return value;
    } finally {
      stack.pop();
    }
  }

  /** This scope, except that `name` itself means the outer variable of that name, if any. */
  private shadowing(name: string): ResolvingScope {
    const outer = this.parent;
    if (!outer?.has(name)) return this;
    return {
      has: (n) => this.has(n),
      names: () => this.names(),
      get: (n) => (n === name ? outer.get(n) : this.get(n)),
      where: (n) => (n === name ? outer.where(n) : this.where(n)),
    };
  }

  /** Where the variable `name` that this scope sees was defined. */
  where(name: string): SourceLocation | undefined {
    if (Object.hasOwn(this.raw, name)) return this.context.locations.value([...this.path, name]);
    return this.parent?.where(name);
  }

  /** Every variable of this level, resolved (for the output config). */
  all(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(this.raw)) setOwn(out, name, this.get(name));
    return out;
  }
}

/** How a value was computed: the expression and the variables it read, for error hints. */
export interface ValueOrigin {
  expression: string;
  variables: { name: string; value: unknown; location: SourceLocation | undefined }[];
}

/** `computed by "${width / 3}" where width = 100 (set at base.yaml:3:10)`: the hint under a value error. */
export function describeOrigin(origin: ValueOrigin): string {
  const variables = origin.variables.map(
    (v) => `${v.name} = ${JSON.stringify(v.value)}${v.location ? ` (set at ${formatLocation(v.location)})` : ''}`,
  );
  return `computed by ${JSON.stringify(origin.expression)}${variables.length > 0 ? ` where ${variables.join(', ')}` : ''}`;
}

class Resolver {
  readonly resolving: { scope: VariableScope; name: string }[] = [];
  readonly origins = new Map<string, ValueOrigin>();
  constructor(readonly locations: LocationMap) {}

  resolve(value: unknown, path: ConfigPath, scope: ResolvingScope): unknown {
    if (typeof value === 'string') return value.includes('${') ? this.evaluate(value, path, scope) : value;
    if (Array.isArray(value)) return this.bounded(value.map((item, index) => this.resolve(item, [...path, index], scope)), path);
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) setOwn(out, key, this.resolve(item, [...path, key], scope));
      return this.bounded(out, path);
    }
    return value;
  }

  /** Sizes of values already measured: a value shared by many references is measured once. */
  private readonly sizes = new WeakMap<object, number>();

  /** Characters of text plus items of lists and mappings, as if written out (shared values count each time). */
  private size(value: unknown): number {
    if (typeof value === 'string') return value.length;
    if (value === null || typeof value !== 'object') return 1;
    const known = this.sizes.get(value);
    if (known !== undefined) return known;
    let total = 1;
    for (const item of Array.isArray(value) ? value : Object.values(value)) {
      total += this.size(item);
      if (total > MAX_EXPRESSION_VALUE_SIZE) break;
    }
    this.sizes.set(value, total);
    return total;
  }

  /** Refuses a list or mapping that references make too large to write out (a doubling bomb). */
  private bounded<T>(value: T, path: ConfigPath): T {
    const size = this.size(value);
    if (size > MAX_EXPRESSION_VALUE_SIZE) {
      throw new ConfigError({
        location: this.locations.value(path),
        path,
        message: `this value expands to more than ${MAX_EXPRESSION_VALUE_SIZE} items and characters (variables referring to variables), over the limit`,
        hint: 'a variable used twice per level doubles with every level',
      });
    }
    return value;
  }

  private evaluate(text: string, path: ConfigPath, scope: ResolvingScope): unknown {
    const variables: ValueOrigin['variables'] = [];
    const recording: Scope = {
      has: (name) => scope.has(name),
      names: () => scope.names(),
      get: (name) => {
        const value = scope.get(name);
        if (!variables.some((v) => v.name === name)) variables.push({ name, value, location: scope.where(name) });
        return value;
      },
    };
    try {
      const value = interpolate(text, recording);
      this.origins.set(JSON.stringify(path), { expression: text, variables });
      return value;
    } catch (error) {
      if (!(error instanceof ExpressionError)) throw error;
      const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
      throw new ConfigError({ location: this.locations.value(path), path, message: `${error.message} in ${JSON.stringify(shown)}`, hint: error.hint });
    }
  }
}

function variables(config: Record<string, unknown>, path: ConfigPath, locations: LocationMap): Record<string, unknown> {
  let value: unknown = config;
  for (const part of path) value = isPlainObject(value) ? value[part as string] : undefined;
  if (value === undefined || value === null) return {};
  if (!isPlainObject(value)) {
    throw new ConfigError({ location: locations.value(path), path, expected: 'a mapping of variable names to values', found: describeValue(value) });
  }
  return value;
}

/**
 * Evaluates every `${...}` of a merged config. Top-level `vars` are visible everywhere;
 * `model.vars` only inside `model` (nearest wins). Template layers are kept as written.
 */
export function resolveExpressions(
  config: Record<string, unknown>,
  locations: LocationMap,
): { config: Record<string, unknown>; origin(path: ConfigPath): ValueOrigin | undefined } {
  const resolver = new Resolver(locations);
  const top = new VariableScope(variables(config, ['vars'], locations), ['vars'], undefined, resolver);
  const modelScope = new VariableScope(variables(config, ['model', 'vars'], locations), ['model', 'vars'], top, resolver);

  const walk = (value: unknown, path: ConfigPath): unknown => {
    if (isTemplatePath(path)) return value;
    if (path.length === 1 && path[0] === 'vars') return top.all();
    if (path.length === 2 && path[0] === 'model' && path[1] === 'vars') return modelScope.all();
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) setOwn(out, key, walk(item, [...path, key]));
      return out;
    }
    if (Array.isArray(value)) return value.map((item, index) => walk(item, [...path, index]));
    return resolver.resolve(value, path, path[0] === 'model' ? modelScope : top);
  };
  const resolved = walk(config, []) as Record<string, unknown>;
  return { config: resolved, origin: (path) => resolver.origins.get(JSON.stringify(path)) };
}
