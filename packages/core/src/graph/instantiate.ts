import { ExpressionError, hasExpression, interpolate, toScope, type ValueOrigin } from '../config/index.ts';
import { ConfigError, formatPath, throwIfAny, type ConfigPath } from '../errors.ts';
import type { Registries, SourceLocation } from '../registry/kinds.ts';
import { didYouMean } from '../registry/registry.ts';
import type { EntryConfig, ModelConfig } from '../schema/types.ts';
import { validateExperimentPart, type Locator } from '../schema/validate.ts';

/* ------------------------------------------------------------------------------------------ *
 * Template instantiation: the step between validation and building. Every `{type: call}`      *
 * node's definition (model.blocks.<name>.layers) is evaluated with its scope and checked with  *
 * the experiment's own schema, so a mistake inside a template is found (and worded) like one   *
 * anywhere else, before any layer or any data exists. The graph builder then only wires.       *
 * ------------------------------------------------------------------------------------------ */

/** One evaluated, checked instance of a template: what a `call` node stands for. */
export interface TemplateInstance {
  block: string;
  layers: EntryConfig[];
}

/** A `call` being instantiated: which block, from which node (its config path). */
export interface CallSite {
  block: string;
  at: ConfigPath;
}

/** The model section with every template instantiated and checked: what `buildModel` builds. */
export class ModelPlan {
  constructor(
    readonly model: ModelConfig,
    private readonly instances: WeakMap<object, TemplateInstance>,
  ) {}

  /** The instance a `call` node of this plan (of `model.layers` or of another instance) stands for. */
  instanceOf(call: object): TemplateInstance {
    const instance = this.instances.get(call);
    if (!instance) throw new Error('internal: a call node that the plan did not instantiate');
    return instance;
  }
}

export interface InstantiateOptions {
  registries: Registries;
  /** The experiment's top-level `vars` (the lowest level of a template's scope). */
  vars?: Record<string, unknown> | undefined;
  /** Maps a YAML path to where it was written (the loader's `locate`), for located errors. */
  locate?: ((path: ConfigPath) => SourceLocation | undefined) | undefined;
  /** Where the key that introduces a path was written (the loader's `locateKey`); default `locate`. */
  locateKey?: ((path: ConfigPath) => SourceLocation | undefined) | undefined;
  /** How a value of `model.layers` was computed (the loader's `origin`), for hints. */
  origin?: ((path: ConfigPath) => ValueOrigin | undefined) | undefined;
}

/** ` (in the instance of block "mlp" called at model.layers[2])`: where an error inside a template happened. */
export function instanceContext(calls: readonly CallSite[]): string {
  const call = calls.at(-1);
  return call ? ` (in the instance of block "${call.block}" called at ${formatPath(call.at)})` : '';
}

/** The same error, said to have happened inside the innermost of `calls`. */
function within(error: ConfigError, calls: readonly CallSite[]): ConfigError {
  if (calls.length === 0) return error;
  return new ConfigError({ location: error.location, path: error.path, message: `${error.detail}${instanceContext(calls)}`, hint: error.hint }, { cause: error });
}

/**
 * Checks the `model` section (with the experiment schema) and instantiates every template it
 * calls, checking each instance. Throws ConfigError(s), located; returns the plan to build.
 */
export function instantiateModel(model: ModelConfig, options: InstantiateOptions): ModelPlan {
  return new Instantiation(model, options).run();
}

class Instantiation {
  private readonly instances = new WeakMap<object, TemplateInstance>();
  private readonly locate: (path: ConfigPath) => SourceLocation | undefined;
  private readonly locateKey: (path: ConfigPath) => SourceLocation | undefined;

  constructor(
    private readonly model: ModelConfig,
    private readonly options: InstantiateOptions,
  ) {
    this.locate = options.locate ?? (() => undefined);
    this.locateKey = options.locateKey ?? this.locate;
  }

  run(): ModelPlan {
    const locator: Locator = { config: { model: this.model }, locate: this.locate, locateKey: this.locateKey, origin: this.options.origin };
    throwIfAny(validateExperimentPart('model', this.model, ['model'], locator, this.options.registries));
    this.walk(this.model.layers, ['model', 'layers'], []);
    return new ModelPlan(this.model, this.instances);
  }

  /** Visits checked nodes, instantiating every `call` among them (combinators nest nodes). */
  private walk(nodes: readonly EntryConfig[], path: ConfigPath, calls: readonly CallSite[]): void {
    nodes.forEach((node, i) => this.visit(node, [...path, i], calls));
  }

  private visit(node: EntryConfig, path: ConfigPath, calls: readonly CallSite[]): void {
    switch (node.type) {
      case 'sequential':
      case 'residual':
      case 'repeat':
        return this.walk(node.layers as EntryConfig[], [...path, 'layers'], calls);
      case 'branch':
        return (node.branches as EntryConfig[][]).forEach((branch, i) => this.walk(branch, [...path, 'branches', i], calls));
      case 'shared':
        if (node.layer !== undefined) this.visit(node.layer as EntryConfig, [...path, 'layer'], calls);
        return;
      case 'call':
        return this.instantiate(node, path, calls);
    }
  }

  private instantiate(node: EntryConfig, path: ConfigPath, calls: readonly CallSite[]): void {
    const block = node.block as string;
    const blocks = this.model.blocks ?? {};
    const definition = Object.hasOwn(blocks, block) ? blocks[block] : undefined;
    const fail = (where: ConfigPath, init: { message: string; hint?: string | undefined }, atKey = false) =>
      within(new ConfigError({ location: (atKey ? this.locateKey : this.locate)(where), path: where, ...init }), calls);
    if (!definition) {
      const defined = Object.keys(blocks);
      const hint = didYouMean(block, defined);
      throw fail([...path, 'block'], {
        message: `no block definition "${block}" under model.blocks`,
        hint: hint ? `did you mean "${hint}"?` : defined.length ? `defined: ${defined.join(', ')}` : undefined,
      });
    }
    if (calls.some((call) => call.block === block)) {
      throw fail([...path, 'block'], { message: `block "${block}" calls itself (${[...calls.map((c) => c.block), block].join(' -> ')})` });
    }
    const defaults = definition.params ?? {};
    const args = (node.args ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(args)) {
      if (Object.hasOwn(defaults, key)) continue;
      const hint = didYouMean(key, Object.keys(defaults));
      throw fail([...path, 'args', key], {
        message: `block "${block}" has no parameter "${key}"`,
        hint: hint ? `did you mean "${hint}"?` : `its params: ${Object.keys(defaults).join(', ') || '(none)'}`,
      }, true);
    }
    const inside = [...calls, { block, at: path }];
    const at: ConfigPath = ['model', 'blocks', block, 'layers'];
    // Scope, nearest last: top vars < model.vars < the definition's defaults < the call's args.
    const scope = toScope({ ...this.options.vars, ...this.model.vars, ...defaults, ...args });
    const origins = new Map<string, ValueOrigin>();
    const layers = this.evaluate(definition.layers, at, scope, origins, inside) as EntryConfig[];
    const locator: Locator = {
      config: { model: this.model },
      locate: this.locate,
      locateKey: this.locateKey,
      origin: (where) => origins.get(JSON.stringify(where)),
    };
    throwIfAny(validateExperimentPart('layers', layers, at, locator, this.options.registries).map((error) => within(error, inside)));
    this.instances.set(node, { block, layers });
    this.walk(layers, at, inside);
  }

  /** A deep copy of a template value with every `${...}` evaluated, recording how each was computed. */
  private evaluate(value: unknown, path: ConfigPath, scope: ReturnType<typeof toScope>, origins: Map<string, ValueOrigin>, calls: readonly CallSite[]): unknown {
    if (typeof value === 'string') {
      if (!hasExpression(value)) return value;
      const variables: ValueOrigin['variables'] = [];
      const recording = {
        has: (name: string) => scope.has(name),
        names: () => scope.names(),
        get: (name: string) => {
          const read = scope.get(name);
          if (!variables.some((v) => v.name === name)) variables.push({ name, value: read, location: undefined });
          return read;
        },
      };
      try {
        const result = interpolate(value, recording);
        origins.set(JSON.stringify(path), { expression: value, variables });
        return result;
      } catch (error) {
        if (!(error instanceof ExpressionError)) throw error;
        const located = new ConfigError({ location: this.locate(path), path, message: `in "${value}": ${error.message}`, hint: error.hint }, { cause: error });
        throw within(located, calls);
      }
    }
    if (Array.isArray(value)) return value.map((item, i) => this.evaluate(item, [...path, i], scope, origins, calls));
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.evaluate(v, [...path, k], scope, origins, calls)]));
    }
    return value;
  }
}
