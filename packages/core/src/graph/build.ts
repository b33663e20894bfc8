import * as tf from '@tensorflow/tfjs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { describeOrigin, ExpressionError, hasExpression, interpolate, toScope, type ValueOrigin } from '../config/index.ts';
import { ConfigError, describeValue, type ConfigPath } from '../errors.ts';
import type { BlockEntry, Registries, SourceLocation } from '../registry/kinds.ts';
import { didYouMean, RegistryError } from '../registry/registry.ts';
import { plainType, VALUE_KEYWORDS } from '../schema/validate.ts';
import { layerSeed } from '../random/index.ts';
import { COMBINATOR_TYPES, NAME_PATTERN, type CombinatorType } from './combinators.ts';

/* ------------------------------------------------------------------------------------------ *
 * The graph builder: turns `model:` into a tf.LayersModel with the functional API. Leaves are  *
 * layers made by the registered primitives; combinators only wire symbolic tensors. Templates  *
 * (model.blocks.<name>.layers) are instantiated per call with their own variable scope.        *
 * ------------------------------------------------------------------------------------------ */

/** A model node as written in YAML: `{type: dense, units: 64, name?: ...}`. */
export type ModelNode = { type: string; name?: string } & Record<string, unknown>;

/** A reusable definition: `model.blocks.<name>`. */
export interface BlockDefinition {
  params?: Record<string, unknown>;
  layers: unknown[];
}

/** The `model:` section of an experiment. */
export interface ModelSpec {
  vars?: Record<string, unknown>;
  blocks?: Record<string, BlockDefinition>;
  layers: unknown[];
}

export interface BuildOptions {
  registries: Registries;
  /** One example's shape, without the batch axis, e.g. [64, 64, 3]. */
  inputShape: number[];
  /** Run seed; each layer's initializer seed is derived from it and the layer's name. */
  seed: number;
  /** Maps a YAML path to where it was written (the loader's `locate`), for located errors. */
  locate?: (path: ConfigPath) => SourceLocation;
  /** Where the key that introduces a path was written (the loader's `locateKey`), for unknown keys; default `locate`. */
  locateKey?: (path: ConfigPath) => SourceLocation;
  /** The experiment's top-level `vars` (the lowest level of a template's scope). */
  vars?: Record<string, unknown>;
  /** Name of the LayersModel (default "model"). */
  name?: string;
}

/** Layers and tensors that belong to one block instance (a call, a repetition or the model). */
interface Instance {
  /** Name scope where this instance's shared modules are named. */
  prefix: string;
  tensors: Map<string, tf.SymbolicTensor>;
  shared: Map<string, tf.layers.Layer>;
}

/** Hands out unique names inside one name scope: explicit names verbatim, others <base>_<k>. */
class NameScope {
  private readonly counters = new Map<string, number>();
  constructor(
    readonly prefix: string,
    private readonly taken: Set<string>,
  ) {}

  /** The scope of the layers under `full` (a name this scope handed out). */
  under(full: string): NameScope {
    return new NameScope(`${full}/`, this.taken);
  }

  /** Claims and returns `<prefix><base>_<k>` with the first k not yet used. */
  auto(base: string): string {
    let k = this.counters.get(base) ?? 0;
    let full: string;
    do {
      k += 1;
      full = `${this.prefix}${base}_${k}`;
    } while (this.taken.has(full));
    this.counters.set(base, k);
    this.taken.add(full);
    return full;
  }

  /** Claims a full name; false when some other layer already has it. */
  claim(full: string): boolean {
    if (this.taken.has(full)) return false;
    this.taken.add(full);
    return true;
  }
}

/** Where the builder is while walking the spec. */
interface Frame {
  names: NameScope;
  instance: Instance;
  /** Scope for `${...}` inside templates; undefined for nodes the loader already evaluated. */
  vars: Record<string, unknown> | undefined;
  /** Definitions being instantiated (outermost first), to refuse recursion and to explain errors. */
  calls: { block: string; at: string }[];
}

const NESTED_KEYS = new Set(['layers', 'branches', 'layer']);
const isCombinator = (type: string): type is CombinatorType => (COMBINATOR_TYPES as readonly string[]).includes(type);

/**
 * Builds the model described by `spec` (the `model:` section) as a functional tf.LayersModel.
 * Errors about the spec are ConfigErrors located through `locate`.
 */
export function buildModel(spec: ModelSpec, options: BuildOptions): tf.LayersModel {
  return new GraphBuilder(spec, options).build();
}

/**
 * Frees a built model's weights (and whatever else its layers hold). `model.dispose()` is not
 * enough for these graphs: tfjs-layers counts every application of a layer as a reference and
 * frees its weights only at zero, so a `shared` module applied twice would keep them.
 * The model cannot be used afterwards.
 */
export function disposeModel(model: tf.LayersModel): void {
  disposeLayers(model.layers);
}

/** Releases every reference to each layer, so that each one frees its weights. */
function disposeLayers(layers: Iterable<tf.layers.Layer>): void {
  const references = (layer: tf.layers.Layer) => (layer as unknown as { _refCount: number | null })._refCount;
  for (const layer of layers) {
    if (!layer.built) continue; // it made no weights
    // Built but never applied (its call failed): dispose() refuses such a layer.
    if (references(layer) === null) for (const weight of layer.weights) weight.dispose();
    while ((references(layer) ?? 0) > 0) layer.dispose();
  }
}

class GraphBuilder {
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  /** How the last instance's template values were computed (by path), for error hints. */
  private readonly origins = new Map<string, ValueOrigin>();
  /** Every layer applied so far, to free their weights when the build fails half way. */
  private readonly layers = new Set<tf.layers.Layer>();

  constructor(
    private readonly spec: ModelSpec,
    private readonly options: BuildOptions,
  ) {}

  build(): tf.LayersModel {
    try {
      return this.buildGraph();
    } catch (error) {
      // No model is returned, so nothing else could dispose the weights of the layers built so far.
      disposeLayers(this.layers);
      throw error;
    }
  }

  private buildGraph(): tf.LayersModel {
    const spec = this.spec;
    if (spec === null || typeof spec !== 'object' || !Array.isArray(spec.layers)) {
      throw this.error(['model', 'layers'], { expected: 'a list of layer nodes', found: describeValue(spec?.layers) });
    }
    const input = tf.input({ shape: this.options.inputShape, name: 'input' });
    const root: Frame = {
      names: new NameScope('', new Set(['input'])),
      instance: { prefix: '', tensors: new Map(), shared: new Map() },
      vars: undefined,
      calls: [],
    };
    const output = this.applyList(spec.layers, input, ['model', 'layers'], root);
    return tf.model({ inputs: input, outputs: output, name: this.options.name ?? 'model' });
  }

  private applyList(nodes: unknown, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    if (!Array.isArray(nodes)) throw this.error(path, { expected: 'a list of layer nodes', found: describeValue(nodes) }, frame);
    return nodes.reduce<tf.SymbolicTensor>((tensor, node, i) => this.applyNode(node, tensor, [...path, i], frame), x);
  }

  private applyNode(raw: unknown, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    const node = this.resolve(raw, path, frame);
    const entry = this.entryOf(node, path, frame);
    this.validate(entry, node, path, frame);
    const explicitName = typeof node.name === 'string' ? node.name : undefined;
    const output = isCombinator(node.type)
      ? this.applyCombinator(node.type, node, x, path, frame)
      : this.applyLeaf(entry, node, x, path, frame, this.leafName(node, path, frame));
    if (explicitName !== undefined && node.type !== 'shared') frame.instance.tensors.set(explicitName, output);
    return output;
  }

  /** The node with its own `${...}` evaluated (nested nodes are evaluated when visited). */
  private resolve(raw: unknown, path: ConfigPath, frame: Frame): ModelNode {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw this.error(path, { expected: 'a layer node (a mapping with a `type`)', found: describeValue(raw) }, frame);
    }
    const node: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(raw)) {
      node[key] = frame.vars && !NESTED_KEYS.has(key) ? this.interpolateValue(value, [...path, key], frame) : value;
    }
    if (typeof node.type !== 'string') {
      throw this.error([...path, 'type'], { expected: 'a block type (string)', found: describeValue(node.type) }, frame);
    }
    return node as ModelNode;
  }

  private interpolateValue(value: unknown, path: ConfigPath, frame: Frame): unknown {
    if (typeof value === 'string') {
      const scope = toScope(frame.vars!);
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
        if (hasExpression(value)) this.origins.set(JSON.stringify(path), { expression: value, variables });
        return result;
      } catch (error) {
        if (!(error instanceof ExpressionError)) throw error;
        throw this.error(path, { message: `in "${value}": ${error.message}`, hint: error.hint }, frame, error);
      }
    }
    if (Array.isArray(value)) return value.map((item, i) => this.interpolateValue(item, [...path, i], frame));
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.interpolateValue(v, [...path, k], frame)]));
    }
    return value;
  }

  private entryOf(node: ModelNode, path: ConfigPath, frame: Frame): BlockEntry {
    try {
      return this.options.registries.blocks.get(node.type);
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      const hint = didYouMean(node.type, this.options.registries.blocks.types());
      throw this.error([...path, 'type'], {
        message: `unknown block type "${node.type}"`,
        hint: hint ? `did you mean "${hint}"?` : `valid types: ${this.options.registries.blocks.types().join(', ')}`,
      }, frame, error);
    }
  }

  /** Checks a node against its entry's params schema (plus `type` and `name`); nested nodes are checked when visited. */
  private validate(entry: BlockEntry, node: ModelNode, path: ConfigPath, frame: Frame): void {
    let check = this.validators.get(entry.type);
    if (!check) {
      const params = entry.params as { properties?: Record<string, unknown> };
      check = this.ajv.compile({
        ...entry.params,
        $defs: { block: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } } },
        properties: { ...params.properties, type: { const: entry.type }, name: { type: 'string', pattern: NAME_PATTERN } },
      });
      this.validators.set(entry.type, check);
    }
    if (check(node)) return;
    throw this.schemaError(check.errors ?? [], entry, node, path, frame);
  }

  private schemaError(errors: ErrorObject[], entry: BlockEntry, node: ModelNode, path: ConfigPath, frame: Frame): ConfigError {
    // One error per node: an unknown key first (often a typo of a required one), a missing key last.
    const rank = (e: ErrorObject) => (e.keyword === 'additionalProperties' ? 0 : e.keyword === 'required' ? 2 : 1);
    const first = [...errors].sort((a, b) => rank(a) - rank(b))[0]!;
    const where = [...path, ...first.instancePath.split('/').slice(1).map((part) => (/^\d+$/.test(part) ? Number(part) : part))];
    const properties = Object.keys((entry.params as { properties?: object }).properties ?? {});
    if (first.keyword === 'additionalProperties') {
      const key = (first.params as { additionalProperty: string }).additionalProperty;
      const hint = didYouMean(key, [...properties, 'name', 'type']);
      return this.error([...where, key], {
        atKey: true,
        message: `unknown parameter "${key}" for ${entry.type}`,
        hint: hint ? `did you mean "${hint}"?` : `valid parameters: ${[...properties, 'name'].join(', ')}`,
      }, frame);
    }
    if (first.keyword === 'required') {
      const key = (first.params as { missingProperty: string }).missingProperty;
      return this.error(where, { message: `${entry.type} needs "${key}"` }, frame);
    }
    const value = where.slice(path.length).reduce<unknown>((v, k) => (v as Record<string | number, unknown>)?.[k], node);
    const origin = frame.vars && VALUE_KEYWORDS.has(first.keyword) ? this.origins.get(JSON.stringify(where)) : undefined;
    return this.error(where, { expected: schemaExpectation(first), found: describeValue(value), hint: origin && describeOrigin(origin) }, frame);
  }

  private leafName(node: ModelNode, path: ConfigPath, frame: Frame): string {
    if (node.name === undefined) return frame.names.auto(node.type);
    const full = `${frame.names.prefix}${node.name}`;
    if (!frame.names.claim(full)) {
      throw this.error([...path, 'name'], { message: `a layer named "${full}" already exists; give this one another name` }, frame);
    }
    return full;
  }

  private applyLeaf(entry: BlockEntry, node: ModelNode, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame, name: string): tf.SymbolicTensor {
    const { type: _type, name: _name, ...params } = node;
    let layer: tf.layers.Layer;
    try {
      layer = entry.create(params, { name, seed: layerSeed(this.options.seed, name) });
    } catch (error) {
      throw this.error(path, { message: `cannot create ${entry.type} "${name}": ${messageOf(error)}` }, frame, error);
    }
    return this.applyLayer(layer, x, path, frame);
  }

  private applyLayer(layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[], path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    this.layers.add(layer);
    try {
      return layer.apply(x) as tf.SymbolicTensor;
    } catch (error) {
      const shapes = (Array.isArray(x) ? x : [x]).map((t) => `[${t.shape.map((s) => s ?? 'batch').join(', ')}]`).join(' and ');
      throw this.error(path, { message: `cannot apply "${layer.name}" to an input of shape ${shapes}: ${messageOf(error)}` }, frame, error);
    }
  }

  private applyCombinator(type: CombinatorType, node: ModelNode, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    switch (type) {
      case 'sequential':
        return this.applyList(node.layers, x, [...path, 'layers'], this.scoped(node, path, frame));
      case 'residual': {
        const inner = this.scoped(node, path, frame);
        const skip = node.skip === undefined ? x : this.namedTensor(node.skip as string, [...path, 'skip'], frame);
        const body = this.applyList(node.layers, x, [...path, 'layers'], inner);
        return this.applyLayer(tf.layers.add({ name: inner.names.auto('add') }), [skip, body], path, frame);
      }
      case 'branch': {
        const inner = this.scoped(node, path, frame);
        const outputs = (node.branches as unknown[]).map((branch, i) => this.applyList(branch, x, [...path, 'branches', i], inner));
        const name = inner.names.auto(node.merge as string);
        const merge =
          node.merge === 'add'
            ? tf.layers.add({ name })
            : node.merge === 'multiply'
              ? tf.layers.multiply({ name })
              : tf.layers.concatenate({ name, axis: (node.axis as number | undefined) ?? -1 });
        return this.applyLayer(merge, outputs, path, frame);
      }
      case 'repeat': {
        let y = x;
        const base = node.name ?? 'block';
        for (let i = 0; i < (node.times as number); i++) {
          const names = frame.names.under(frame.names.auto(base));
          y = this.applyList(node.layers, y, [...path, 'layers'], {
            ...frame,
            names,
            instance: { prefix: names.prefix, tensors: new Map(), shared: new Map() },
          });
        }
        return y;
      }
      case 'call':
        return this.applyCall(node, x, path, frame);
      case 'shared':
        return this.applyShared(node, x, path, frame);
    }
  }

  /** The frame for a named (or auto-named) container: its layers are named under it. */
  private scoped(node: ModelNode, path: ConfigPath, frame: Frame): Frame {
    if (node.name === undefined) return { ...frame, names: frame.names.under(frame.names.auto(node.type)) };
    const full = `${frame.names.prefix}${node.name}`;
    if (!frame.names.claim(full)) {
      throw this.error([...path, 'name'], { message: `a layer or scope named "${full}" already exists; give this one another name` }, frame);
    }
    return { ...frame, names: frame.names.under(full) };
  }

  private namedTensor(name: string, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    const tensor = frame.instance.tensors.get(name);
    if (tensor) return tensor;
    const known = [...frame.instance.tensors.keys()];
    const hint = didYouMean(name, known);
    throw this.error(path, {
      message: `no earlier layer named "${name}" in this block`,
      hint: hint ? `did you mean "${hint}"?` : known.length ? `named so far: ${known.join(', ')}` : 'give the layer whose output you mean a `name`',
    }, frame);
  }

  private applyCall(node: ModelNode, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    const blockName = node.block as string;
    const blocks = this.spec.blocks ?? {};
    const definition = Object.hasOwn(blocks, blockName) ? blocks[blockName] : undefined;
    if (!definition) {
      const hint = didYouMean(blockName, Object.keys(blocks));
      throw this.error([...path, 'block'], {
        message: `no block definition "${blockName}" under model.blocks`,
        hint: hint ? `did you mean "${hint}"?` : Object.keys(blocks).length ? `defined: ${Object.keys(blocks).join(', ')}` : undefined,
      }, frame);
    }
    if (frame.calls.some((call) => call.block === blockName)) {
      throw this.error([...path, 'block'], { message: `block "${blockName}" calls itself (${[...frame.calls.map((c) => c.block), blockName].join(' -> ')})` }, frame);
    }
    const defaults = definition.params ?? {};
    const args = (node.args ?? {}) as Record<string, unknown>;
    for (const key of Object.keys(args)) {
      if (!Object.hasOwn(defaults, key)) {
        const hint = didYouMean(key, Object.keys(defaults));
        throw this.error([...path, 'args', key], {
          atKey: true,
          message: `block "${blockName}" has no parameter "${key}"`,
          hint: hint ? `did you mean "${hint}"?` : `its params: ${Object.keys(defaults).join(', ') || '(none)'}`,
        }, frame);
      }
    }
    // Scope, nearest last: top vars < model.vars < the definition's defaults < the call's args.
    const vars = { ...this.options.vars, ...this.spec.vars, ...defaults, ...args };
    const names = node.name === undefined ? frame.names : this.scoped(node, path, frame).names;
    return this.applyList(definition.layers, x, ['model', 'blocks', blockName, 'layers'], {
      names,
      instance: { prefix: names.prefix, tensors: new Map(), shared: new Map() },
      vars,
      calls: [...frame.calls, { block: blockName, at: names.prefix || 'the model' }],
    });
  }

  private applyShared(node: ModelNode, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    const name = node.name!;
    const existing = frame.instance.shared.get(name);
    if (existing) {
      if (node.layer !== undefined) {
        throw this.error([...path, 'layer'], { message: `shared module "${name}" is already defined; later uses give only its name` }, frame);
      }
      return this.applyLayer(existing, x, path, frame);
    }
    if (node.layer === undefined) {
      throw this.error(path, { message: `shared module "${name}" is used before it is defined; its first use needs \`layer\`` }, frame);
    }
    const layerPath = [...path, 'layer'];
    const layerNode = this.resolve(node.layer, layerPath, frame);
    const entry = this.entryOf(layerNode, layerPath, frame);
    if (isCombinator(layerNode.type)) {
      throw this.error([...layerPath, 'type'], { message: `a shared module must be a single layer, not a ${layerNode.type}` }, frame);
    }
    this.validate(entry, layerNode, layerPath, frame);
    const full = `${frame.instance.prefix}${name}`;
    if (!frame.names.claim(full)) {
      throw this.error([...path, 'name'], { message: `a layer named "${full}" already exists; give this module another name` }, frame);
    }
    const { type: _type, name: _name, ...params } = layerNode;
    let layer: tf.layers.Layer;
    try {
      layer = entry.create(params, { name: full, seed: layerSeed(this.options.seed, full) });
    } catch (error) {
      throw this.error(layerPath, { message: `cannot create ${entry.type} "${full}": ${messageOf(error)}` }, frame, error);
    }
    frame.instance.shared.set(name, layer);
    const output = this.applyLayer(layer, x, path, frame);
    frame.instance.tensors.set(name, output);
    return output;
  }

  private error(
    path: ConfigPath,
    init: { expected?: string; found?: string; message?: string; hint?: string | undefined; atKey?: boolean },
    frame?: Frame,
    cause?: unknown,
  ): ConfigError {
    const call = frame?.calls.at(-1);
    const within = call ? ` (in ${call.at.replace(/\/$/, '')}, an instance of block "${call.block}")` : '';
    const message = init.message !== undefined ? `${init.message}${within}` : undefined;
    const expected = init.expected !== undefined && message === undefined ? `${init.expected}` : undefined;
    return new ConfigError(
      {
        location: ((init.atKey && this.options.locateKey) || this.options.locate)?.(path),
        path,
        ...(message !== undefined ? { message } : {}),
        ...(expected !== undefined ? { expected, found: init.found !== undefined ? `${init.found}${within}` : undefined } : {}),
        hint: init.hint,
      },
      cause === undefined ? undefined : { cause },
    );
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A plain-words expectation from one ajv error. */
function schemaExpectation(error: ErrorObject): string {
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'type':
      return plainType(p.type);
    case 'enum':
      return `one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return JSON.stringify(p.allowedValue);
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `a value ${p.comparison} ${p.limit}`;
    case 'pattern':
      return `a name matching ${p.pattern}`;
    default:
      return error.message ?? 'a valid value';
  }
}
