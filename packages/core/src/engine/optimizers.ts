import * as tf from '@tensorflow/tfjs';
import {
  ADAM_DEFAULTS,
  ADAMW_DEFAULTS,
  SGD_DEFAULTS,
  type AdamParams,
  type ClipParams,
  type SgdParams,
  type WeightDecayParams,
} from './params.ts';

/**
 * Optimizers written out in full rather than taken from tf.train: TF.js has no AdamW, and a
 * checkpoint must capture every slot and the iteration count so that a resumed run takes
 * exactly the same steps as an uninterrupted one. The update rules follow Keras 3 line by line
 * (keras/src/optimizers/{adam,adamw,sgd}.py and base_optimizer.py), so numbers match Keras.
 */

/**
 * A trainable variable with a name that is stable across processes (the model's own weight
 * path, not TF.js's process-unique tensor name): slots are keyed by it, so a checkpoint
 * written by one process restores in another.
 */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

export interface OptimizerState {
  iterations: number;
  /** Slot tensors by `<variable name>/<slot name>` (NamedVariable names). */
  slots: Map<string, tf.Tensor>;
}

export interface Optimizer {
  readonly type: string;
  /** The learning rate set in the config; schedules and callbacks scale from it. */
  readonly learningRate: number;
  /** Steps taken so far (Keras `optimizer.iterations`). */
  readonly iterations: number;
  /**
   * One update with the given learning rate: clip, decay, then the rule itself.
   * `grads[i]` belongs to `variables[i]`. Does not dispose the gradients.
   */
  applyGradients(variables: NamedVariable[], grads: tf.Tensor[], learningRate: number): void;
  /** Slots and iteration count, for checkpoints. The caller must not dispose the tensors. */
  getState(): OptimizerState;
  /** Restores what getState returned; the caller keeps ownership of the given tensors. */
  setState(state: OptimizerState): void;
  dispose(): void;
}

/** Keras 3 `clip_by_norm`: g * c / max(||g||, c), written so that a zero gradient stays zero. */
export function clipByNorm(g: tf.Tensor, clipNorm: number): tf.Tensor {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(g)));
    return tf.div(tf.mul(g, clipNorm), tf.maximum(norm, clipNorm));
  });
}

/** Keras 3 `clip_by_global_norm`: every gradient scaled by c / max(global norm, c). */
export function clipByGlobalNorm(grads: tf.Tensor[], clipNorm: number): tf.Tensor[] {
  return tf.tidy(() => {
    const sumSquares = tf.addN(grads.map((g) => tf.sum(tf.square(g))));
    const scale = tf.div(clipNorm, tf.maximum(tf.sqrt(sumSquares), clipNorm));
    return grads.map((g) => tf.mul(g, scale));
  });
}

/** Some of the variables, concatenated into one flat buffer per slot. */
interface FlatGroup {
  /** Positions of the group's variables in the list the trainer passes. */
  indices: number[];
  names: string[];
  shapes: number[][];
  sizes: number[];
  /** Whether weight decay applies to any variable of the group. */
  decays: boolean;
  /** 1 where weight decay applies, 0 where excluded; null when it applies to the whole group. */
  decayMask: tf.Tensor | null;
  /** One flat buffer per slot name. */
  slots: tf.Variable[];
}

/**
 * Whether to update all variables as one flat buffer. Measured on a reference model's 44 variables:
 * on native TensorFlow the flat update takes 616 -> 71 kernels and ~10 -> ~5 ms; on wasm,
 * where a kernel call is cheap, its SplitV alone costs 4-30 ms (more than the whole
 * per-variable update, 4-7 ms), so there each variable stays its own group.
 */
const groupsAllVariables = () => tf.getBackend() !== 'wasm';

/**
 * What every optimizer shares: slots, iterations, clipping and decoupled weight decay.
 *
 * The update runs on flat buffers: the gradients and variables are concatenated once per step,
 * the rule runs as a handful of element-wise kernels over all parameters at once, and the result
 * is split back. Per variable that would be ~14 small kernels (~600 per step for ~44 variables),
 * whose dispatch cost dominated the update. Slots live flat too and are split into the
 * per-variable `<name>/<slot>` form only for getState, so the checkpoint format is unchanged.
 * The element-wise ops are the same ones, in the same order, as the per-variable rule, and
 * concat/split only copy, so the numbers are bit-identical to updating each variable alone.
 */
abstract class BaseOptimizer implements Optimizer {
  abstract readonly type: string;
  /** Slot names the rule needs, e.g. ['m', 'v']; each is a zero-initialised flat buffer. */
  protected abstract readonly slotNames: readonly string[];
  private step = 0;
  /** Names of the variables the groups were built for, in order. */
  private packedNames: string[] = [];
  private groups: FlatGroup[] = [];
  /** Per-variable slots not (yet) in the flat buffers: restored by setState, or of variables not in the groups. */
  private looseSlots = new Map<string, tf.Tensor>();
  /** Tensors handed out by the last getState; kept alive until the next getState/setState/dispose. */
  private stateViews: tf.Tensor[] = [];

  private readonly clipnorm: number | undefined;
  private readonly globalClipnorm: number | undefined;
  private readonly weightDecay: number;
  private readonly excludeFromWeightDecay: readonly string[];

  constructor(
    readonly learningRate: number,
    clip: ClipParams,
    decay: WeightDecayParams,
  ) {
    this.clipnorm = clip.clipnorm;
    this.globalClipnorm = clip.global_clipnorm;
    // Adam's and SGD's defaults (AdamW passes its own weight_decay).
    this.weightDecay = decay.weight_decay ?? ADAM_DEFAULTS.weight_decay;
    this.excludeFromWeightDecay = decay.exclude_from_weight_decay ?? ADAM_DEFAULTS.exclude_from_weight_decay;
  }

  get iterations(): number {
    return this.step;
  }

  /**
   * The update rule at 1-based step `t` over flat buffers: `variable` is already decayed,
   * `slots` follow slotNames. Assigns the slots and returns the new variable; runs inside tf.tidy.
   */
  protected abstract update(variable: tf.Tensor, grad: tf.Tensor, slots: tf.Variable[], lr: number, t: number): tf.Tensor;

  applyGradients(variables: NamedVariable[], grads: tf.Tensor[], learningRate: number): void {
    if (variables.length !== grads.length) {
      throw new Error(`${variables.length} variables but ${grads.length} gradients`);
    }
    const t = this.step + 1;
    this.ensureGroups(variables);
    tf.tidy(() => {
      let clipped = grads;
      if (this.globalClipnorm != null) clipped = clipByGlobalNorm(clipped, this.globalClipnorm);
      if (this.clipnorm != null) clipped = clipped.map((g) => clipByNorm(g, this.clipnorm!));
      const wd = this.weightDecay;
      for (const group of this.groups) {
        const grad = concatFlat(group.indices.map((i) => clipped[i]!));
        let variable = concatFlat(group.indices.map((i) => variables[i]!.variable));
        if (wd > 0 && group.decays) {
          // f32(wd*lr) times a 0/1 mask is exact, so masked and unmasked decay agree bit for bit.
          const rate = group.decayMask ? tf.mul(group.decayMask, wd * learningRate) : wd * learningRate;
          variable = tf.sub(variable, tf.mul(variable, rate));
        }
        const updated = this.update(variable, grad, group.slots, learningRate, t);
        splitFlat(updated, group).forEach((part, k) => variables[group.indices[k]!]!.variable.assign(part));
      }
    });
    this.step = t;
  }

  /** Packs the slots for this list of variables, unless they are packed for it already. */
  private ensureGroups(variables: NamedVariable[]): void {
    const names = variables.map((v) => v.name);
    if (names.length === this.packedNames.length && names.every((name, i) => name === this.packedNames[i])) return;
    this.unpackSlots();
    const excluded = this.excludeFromWeightDecay;
    const decays = variables.map(({ name }) => !excluded.some((part) => name.includes(part)));
    const all = variables.map((_, i) => i);
    const partition = groupsAllVariables() ? (all.length > 0 ? [all] : []) : all.map((i) => [i]);
    this.groups = partition.map((indices) => {
      const members = indices.map((i) => variables[i]!);
      const slots = this.slotNames.map((slotName) => {
        const packed = tf.tidy(() =>
          concatFlat(
            members.map(({ name, variable }) => {
              const key = `${name}/${slotName}`;
              const saved = this.looseSlots.get(key);
              if (!saved) return tf.zeros(variable.shape);
              if (saved.size !== variable.size) {
                throw new Error(`optimizer slot ${key} has shape [${saved.shape}], the variable [${variable.shape}]`);
              }
              return tf.reshape(saved, variable.shape);
            }),
          ),
        );
        const slot = tf.variable(packed, false, uniqueSlotName(`${slotName}_flat`));
        packed.dispose();
        return slot;
      });
      return {
        indices,
        names: members.map((v) => v.name),
        shapes: members.map((v) => v.variable.shape.slice()),
        sizes: members.map((v) => v.variable.size),
        decays: indices.some((i) => decays[i]),
        decayMask:
          indices.every((i) => decays[i]) || !indices.some((i) => decays[i])
            ? null
            : tf.tidy(() => concatFlat(members.map((v, k) => tf.fill([v.variable.size], decays[indices[k]!] ? 1 : 0)))),
        slots,
      };
    });
    for (const name of names) {
      for (const slotName of this.slotNames) {
        this.looseSlots.get(`${name}/${slotName}`)?.dispose();
        this.looseSlots.delete(`${name}/${slotName}`);
      }
    }
    this.packedNames = names;
  }

  /** Moves the flat slots back into per-variable loose slots (the variable list is changing). */
  private unpackSlots(): void {
    for (const group of this.groups) {
      this.slotNames.forEach((slotName, s) => {
        splitSlot(group.slots[s]!, group).forEach((part, k) => this.looseSlots.set(`${group.names[k]}/${slotName}`, part));
      });
    }
    this.disposeGroups();
  }

  private disposeGroups(): void {
    for (const group of this.groups) {
      group.slots.forEach((slot) => slot.dispose());
      group.decayMask?.dispose();
    }
    this.groups = [];
    this.packedNames = [];
  }

  private disposeStateViews(): void {
    this.stateViews.forEach((view) => view.dispose());
    this.stateViews = [];
  }

  getState(): OptimizerState {
    this.disposeStateViews();
    const slots = new Map(this.looseSlots);
    for (const group of this.groups) {
      this.slotNames.forEach((slotName, s) => {
        splitSlot(group.slots[s]!, group).forEach((part, k) => {
          slots.set(`${group.names[k]}/${slotName}`, part);
          this.stateViews.push(part);
        });
      });
    }
    return { iterations: this.step, slots };
  }

  setState(state: OptimizerState): void {
    this.dispose();
    this.step = state.iterations;
    for (const [key, value] of state.slots) this.looseSlots.set(key, tf.clone(value));
  }

  dispose(): void {
    this.disposeStateViews();
    this.disposeGroups();
    this.looseSlots.forEach((slot) => slot.dispose());
    this.looseSlots.clear();
  }
}

// Every reshape, concat and split is a kernel call, and avoiding calls is the point: a group
// of one keeps its variable's shape (element-wise ops need no flattening), rank-1 tensors skip
// the reshape.
function concatFlat(tensors: tf.Tensor[]): tf.Tensor {
  if (tensors.length === 1) return tensors[0]!;
  return tf.tidy(() => tf.concat(tensors.map((t) => (t.rank === 1 ? t : tf.reshape(t, [-1])))));
}

/** The inverse of concatFlat: one tensor per variable of the group, in its own shape (may be `flat` itself). */
function splitFlat(flat: tf.Tensor, group: Pick<FlatGroup, 'sizes' | 'shapes'>): tf.Tensor[] {
  return tf.tidy(() => {
    if (group.sizes.length === 1) return [flat];
    return tf.split(flat, group.sizes).map((part, k) => (group.shapes[k]!.length === 1 ? part : tf.reshape(part, group.shapes[k]!)));
  });
}

/** A slot buffer split per variable, as tensors that outlive the buffer. */
function splitSlot(slot: tf.Variable, group: FlatGroup): tf.Tensor[] {
  return splitFlat(slot, group).map((part) => (part === slot ? tf.clone(part) : part));
}

// TF.js variable names are process-global; slot keys stay stable, the tensor names need not.
let nextSlotId = 0;
const uniqueSlotName = (key: string) => `optimizer/${key}_${nextSlotId++}`;

/**
 * Adam as Keras 3 writes it: epsilon is added to sqrt(v) *without* bias correction and the
 * bias corrections are folded into the step size alpha.
 */
export class Adam extends BaseOptimizer {
  readonly type: string = 'adam';
  protected readonly slotNames = ['m', 'v'];
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;

  constructor(params: AdamParams = {}) {
    super(params.learning_rate ?? ADAM_DEFAULTS.learning_rate, params, params);
    this.beta1 = params.beta_1 ?? ADAM_DEFAULTS.beta_1;
    this.beta2 = params.beta_2 ?? ADAM_DEFAULTS.beta_2;
    this.epsilon = params.epsilon ?? ADAM_DEFAULTS.epsilon;
  }

  protected update(variable: tf.Tensor, grad: tf.Tensor, [m, v]: tf.Variable[], lr: number, t: number): tf.Tensor {
    const alpha = (lr * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    m!.assign(tf.add(m!, tf.mul(tf.sub(grad, m!), 1 - this.beta1)));
    v!.assign(tf.add(v!, tf.mul(tf.sub(tf.square(grad), v!), 1 - this.beta2)));
    return tf.sub(variable, tf.div(tf.mul(m!, alpha), tf.add(tf.sqrt(v!), this.epsilon)));
  }
}

/** Adam with decoupled weight decay (Keras 3 AdamW: weight_decay defaults to 0.004). */
export class AdamW extends Adam {
  override readonly type = 'adamw';
  constructor(params: AdamParams = {}) {
    super({ ...params, weight_decay: params.weight_decay ?? ADAMW_DEFAULTS.weight_decay });
  }
}

/** Keras 3 SGD: m = momentum*m - lr*g; var += m (nesterov: var += momentum*m - lr*g). */
export class Sgd extends BaseOptimizer {
  readonly type = 'sgd';
  protected readonly slotNames: readonly string[];
  private readonly momentum: number;
  private readonly nesterov: boolean;

  constructor(params: SgdParams = {}) {
    super(params.learning_rate ?? SGD_DEFAULTS.learning_rate, params, params);
    this.momentum = params.momentum ?? SGD_DEFAULTS.momentum;
    this.nesterov = params.nesterov ?? SGD_DEFAULTS.nesterov;
    this.slotNames = this.momentum === 0 ? [] : ['momentum'];
  }

  protected update(variable: tf.Tensor, grad: tf.Tensor, [m]: tf.Variable[], lr: number): tf.Tensor {
    if (!m) return tf.sub(variable, tf.mul(grad, lr));
    m.assign(tf.sub(tf.mul(m, this.momentum), tf.mul(grad, lr)));
    const step = this.nesterov ? tf.sub(tf.mul(m, this.momentum), tf.mul(grad, lr)) : m;
    return tf.add(variable, step);
  }
}
