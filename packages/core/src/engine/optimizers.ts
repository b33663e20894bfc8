import * as tf from '@tensorflow/tfjs';

/**
 * Optimizers written out in full rather than taken from tf.train: TF.js has no AdamW, and a
 * checkpoint must capture every slot and the iteration count so that a resumed run takes
 * exactly the same steps as an uninterrupted one. The update rules follow Keras 3 line by line
 * (keras/src/optimizers/{adam,adamw,sgd}.py and base_optimizer.py), so numbers match Keras.
 */

/** Clipping options shared by every optimizer (Keras names). */
export interface ClipParams {
  /** Clip each gradient to this L2 norm on its own. */
  clipnorm?: number;
  /** Scale all gradients together so that their joint L2 norm is at most this. */
  global_clipnorm?: number;
}

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

export interface WeightDecayParams {
  /** Decoupled weight decay: before each update, var -= learning_rate * weight_decay * var. */
  weight_decay?: number;
  /**
   * Variable-name substrings that get no weight decay (Keras `exclude_from_weight_decay`).
   * Empty by default: like Keras 3 AdamW, decay applies to every trainable variable,
   * biases and normalisation scales included (the reference workload relies on that).
   */
  exclude_from_weight_decay?: string[];
}

/** What every optimizer shares: slots, iterations, clipping and decoupled weight decay. */
abstract class BaseOptimizer implements Optimizer {
  abstract readonly type: string;
  protected slots = new Map<string, tf.Variable>();
  private step = 0;

  constructor(
    readonly learningRate: number,
    private readonly clip: ClipParams,
    private readonly decay: WeightDecayParams,
  ) {}

  get iterations(): number {
    return this.step;
  }

  /** The update rule for one variable at 1-based step `t`; runs inside tf.tidy. */
  protected abstract update(variable: NamedVariable, grad: tf.Tensor, lr: number, t: number): void;

  protected slot({ name, variable }: NamedVariable, slotName: string): tf.Variable {
    const key = `${name}/${slotName}`;
    let slot = this.slots.get(key);
    if (!slot) {
      slot = tf.variable(tf.zerosLike(variable), false, uniqueSlotName(key));
      this.slots.set(key, slot);
    }
    return slot;
  }

  applyGradients(variables: NamedVariable[], grads: tf.Tensor[], learningRate: number): void {
    if (variables.length !== grads.length) {
      throw new Error(`${variables.length} variables but ${grads.length} gradients`);
    }
    const t = this.step + 1;
    tf.tidy(() => {
      let clipped = grads;
      if (this.clip.global_clipnorm != null) clipped = clipByGlobalNorm(clipped, this.clip.global_clipnorm);
      if (this.clip.clipnorm != null) clipped = clipped.map((g) => clipByNorm(g, this.clip.clipnorm!));
      const wd = this.decay.weight_decay ?? 0;
      const excluded = this.decay.exclude_from_weight_decay ?? [];
      variables.forEach((named, i) => {
        const v = named.variable;
        if (wd > 0 && !excluded.some((part) => named.name.includes(part))) {
          v.assign(tf.sub(v, tf.mul(v, wd * learningRate)));
        }
        this.update(named, clipped[i]!, learningRate, t);
      });
    });
    this.step = t;
  }

  getState(): OptimizerState {
    return { iterations: this.step, slots: new Map(this.slots) };
  }

  setState(state: OptimizerState): void {
    this.dispose();
    this.step = state.iterations;
    for (const [key, value] of state.slots) {
      this.slots.set(key, tf.variable(value, false, uniqueSlotName(key)));
    }
  }

  dispose(): void {
    for (const slot of this.slots.values()) slot.dispose();
    this.slots.clear();
  }
}

// TF.js variable names are process-global; slot keys stay stable, the tensor names need not.
let nextSlotId = 0;
const uniqueSlotName = (key: string) => `optimizer/${key}_${nextSlotId++}`;

export interface AdamParams extends ClipParams, WeightDecayParams {
  learning_rate?: number;
  beta_1?: number;
  beta_2?: number;
  epsilon?: number;
}

/**
 * Adam as Keras 3 writes it: epsilon is added to sqrt(v) *without* bias correction and the
 * bias corrections are folded into the step size alpha.
 */
export class Adam extends BaseOptimizer {
  readonly type: string = 'adam';
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;

  constructor(params: AdamParams = {}) {
    super(params.learning_rate ?? 0.001, params, params);
    this.beta1 = params.beta_1 ?? 0.9;
    this.beta2 = params.beta_2 ?? 0.999;
    this.epsilon = params.epsilon ?? 1e-7;
  }

  protected update(named: NamedVariable, grad: tf.Tensor, lr: number, t: number): void {
    const variable = named.variable;
    const m = this.slot(named, 'm');
    const v = this.slot(named, 'v');
    const alpha = (lr * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    m.assign(tf.add(m, tf.mul(tf.sub(grad, m), 1 - this.beta1)));
    v.assign(tf.add(v, tf.mul(tf.sub(tf.square(grad), v), 1 - this.beta2)));
    variable.assign(tf.sub(variable, tf.div(tf.mul(m, alpha), tf.add(tf.sqrt(v), this.epsilon))));
  }
}

/** Adam with decoupled weight decay (Keras 3 AdamW: weight_decay defaults to 0.004). */
export class AdamW extends Adam {
  override readonly type = 'adamw';
  constructor(params: AdamParams = {}) {
    super({ ...params, weight_decay: params.weight_decay ?? 0.004 });
  }
}

export interface SgdParams extends ClipParams, WeightDecayParams {
  learning_rate?: number;
  momentum?: number;
  nesterov?: boolean;
}

/** Keras 3 SGD: m = momentum*m - lr*g; var += m (nesterov: var += momentum*m - lr*g). */
export class Sgd extends BaseOptimizer {
  readonly type = 'sgd';
  private readonly momentum: number;
  private readonly nesterov: boolean;

  constructor(params: SgdParams = {}) {
    super(params.learning_rate ?? 0.01, params, params);
    this.momentum = params.momentum ?? 0;
    this.nesterov = params.nesterov ?? false;
  }

  protected update(named: NamedVariable, grad: tf.Tensor, lr: number): void {
    const variable = named.variable;
    if (this.momentum === 0) {
      variable.assign(tf.sub(variable, tf.mul(grad, lr)));
      return;
    }
    const m = this.slot(named, 'momentum');
    m.assign(tf.sub(tf.mul(m, this.momentum), tf.mul(grad, lr)));
    const step = this.nesterov ? tf.sub(tf.mul(m, this.momentum), tf.mul(grad, lr)) : m;
    variable.assign(tf.add(variable, step));
  }
}
