import * as tf from '@tensorflow/tfjs';
import { ConfigError, type ConfigPath } from '../errors.ts';
import type { BlockEntry } from '../registry/kinds.ts';
import { didYouMean } from '../registry/registry.ts';
import { layerSeed } from '../random/index.ts';
import type { EntryConfig, ModelConfig } from '../schema/types.ts';
import { COMBINATOR_TYPES, type CombinatorType } from './combinators.ts';
import { instanceContext, instantiateModel, ModelPlan, type CallSite, type InstantiateOptions } from './instantiate.ts';

/* ------------------------------------------------------------------------------------------ *
 * The graph builder: turns a checked model plan (instantiate.ts: the `model:` section with     *
 * every template instance evaluated and validated) into a tf.LayersModel with the functional   *
 * API. Leaves are layers made by the registered primitives; combinators only wire symbolic     *
 * tensors; each template instance gets its own name scope, tensors and shared modules.         *
 * ------------------------------------------------------------------------------------------ */

export interface BuildOptions extends InstantiateOptions {
  /** One example's shape, without the batch axis, e.g. [64, 64, 3]. */
  inputShape: number[];
  /** Run seed; each layer's initializer seed is derived from it and the layer's name. */
  seed: number;
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

/** Where the builder is while walking the plan. */
interface Frame {
  names: NameScope;
  instance: Instance;
  /** Template instances being built (outermost first), to explain errors. */
  calls: CallSite[];
}

const isCombinator = (type: string): type is CombinatorType => (COMBINATOR_TYPES as readonly string[]).includes(type);

/**
 * Builds the model described by `model` (the `model:` section, or the plan `instantiateModel`
 * made of it) as a functional tf.LayersModel. Errors about the config are ConfigErrors located
 * through `locate`: a section not yet instantiated is checked first, templates included.
 */
export function buildModel(model: ModelConfig | ModelPlan, options: BuildOptions): tf.LayersModel {
  const plan = model instanceof ModelPlan ? model : instantiateModel(model, options);
  return new GraphBuilder(plan, options).build();
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
  for (const layer of layers) {
    if (!layer.built) continue; // it made no weights
    // Each symbolic application added one inbound node and one reference. Built but never
    // applied (its call failed): dispose() refuses such a layer, so free its weights directly.
    if (layer.inboundNodes.length === 0) {
      for (const weight of layer.weights) weight.dispose();
      continue;
    }
    while (layer.dispose().refCountAfterDispose > 0);
  }
}

class GraphBuilder {
  /** Every layer applied so far, to free their weights when the build fails half way. */
  private readonly layers = new Set<tf.layers.Layer>();

  constructor(
    private readonly plan: ModelPlan,
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
    const input = tf.input({ shape: this.options.inputShape, name: 'input' });
    const root: Frame = {
      names: new NameScope('', new Set(['input'])),
      instance: { prefix: '', tensors: new Map(), shared: new Map() },
      calls: [],
    };
    const output = this.applyList(this.plan.model.layers, input, ['model', 'layers'], root);
    return tf.model({ inputs: input, outputs: output, name: this.options.name ?? 'model' });
  }

  private applyList(nodes: unknown, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    return (nodes as EntryConfig[]).reduce<tf.SymbolicTensor>((tensor, node, i) => this.applyNode(node, tensor, [...path, i], frame), x);
  }

  private applyNode(node: EntryConfig, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    const entry = this.options.registries.blocks.get(node.type);
    const explicitName = typeof node.name === 'string' ? node.name : undefined;
    const output = isCombinator(node.type)
      ? this.applyCombinator(node.type, node, x, path, frame)
      : this.applyLeaf(entry, node, x, path, frame, this.leafName(node, path, frame));
    if (explicitName !== undefined && node.type !== 'shared') frame.instance.tensors.set(explicitName, output);
    return output;
  }

  private leafName(node: EntryConfig, path: ConfigPath, frame: Frame): string {
    if (typeof node.name !== 'string') return frame.names.auto(node.type);
    const full = `${frame.names.prefix}${node.name}`;
    if (!frame.names.claim(full)) {
      throw this.error([...path, 'name'], { message: `a layer named "${full}" already exists; give this one another name` }, frame);
    }
    return full;
  }

  private applyLeaf(entry: BlockEntry, node: EntryConfig, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame, name: string): tf.SymbolicTensor {
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

  private applyCombinator(type: CombinatorType, node: EntryConfig, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
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
        const base = typeof node.name === 'string' ? node.name : 'block';
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
  private scoped(node: EntryConfig, path: ConfigPath, frame: Frame): Frame {
    if (typeof node.name !== 'string') return { ...frame, names: frame.names.under(frame.names.auto(node.type)) };
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

  private applyCall(node: EntryConfig, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    const { block, layers } = this.plan.instanceOf(node);
    const names = node.name === undefined ? frame.names : this.scoped(node, path, frame).names;
    return this.applyList(layers, x, ['model', 'blocks', block, 'layers'], {
      names,
      instance: { prefix: names.prefix, tensors: new Map(), shared: new Map() },
      calls: [...frame.calls, { block, at: path }],
    });
  }

  private applyShared(node: EntryConfig, x: tf.SymbolicTensor, path: ConfigPath, frame: Frame): tf.SymbolicTensor {
    const name = node.name as string;
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
    const layerNode = node.layer as EntryConfig;
    const entry = this.options.registries.blocks.get(layerNode.type);
    if (isCombinator(layerNode.type)) {
      throw this.error([...layerPath, 'type'], { message: `a shared module must be a single layer, not a ${layerNode.type}` }, frame);
    }
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

  /** An error about the node at `path`, said to be inside the template instance being built, if any. */
  private error(path: ConfigPath, init: { message: string; hint?: string | undefined }, frame?: Frame, cause?: unknown): ConfigError {
    return new ConfigError(
      { location: this.options.locate?.(path), path, message: `${init.message}${instanceContext(frame?.calls ?? [])}`, hint: init.hint },
      cause === undefined ? undefined : { cause },
    );
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
