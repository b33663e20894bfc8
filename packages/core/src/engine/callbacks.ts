import * as tf from '@tensorflow/tfjs';
import { EARLY_STOPPING_DEFAULTS, REDUCE_LR_ON_PLATEAU_DEFAULTS, type EarlyStoppingParams, type ReduceLrOnPlateauParams } from './params.ts';

/** What a callback may see and change in the running trainer. */
export interface TrainerControl {
  /** The learning rate the next step will use. */
  getLearningRate(): number;
  setLearningRate(value: number): void;
  /** Current model weights (the live tensors: clone what you keep). */
  getWeights(): tf.Tensor[];
  setWeights(weights: tf.Tensor[]): void;
  stopTraining(): void;
  log(message: string): void;
}

/** JSON state plus tensors, so a checkpoint can carry e.g. the best weights seen so far. */
export interface CallbackState {
  json: Record<string, unknown>;
  tensors: tf.Tensor[];
}

export interface Callback {
  readonly type: string;
  /** `epoch` is 0-based, `logs` holds the epoch's Keras-named metrics (loss, val_loss, ...). */
  onEpochEnd?(epoch: number, logs: Record<string, number>, control: TrainerControl): void;
  onTrainEnd?(control: TrainerControl): void;
  getState(): CallbackState;
  /** Takes ownership of the given tensors. */
  setState(state: CallbackState): void;
  dispose(): void;
}

type Mode = 'auto' | 'min' | 'max';

/**
 * The metric a callback watches (Keras' `monitor` and `mode`) and the best value seen so far,
 * shared by ReduceLrOnPlateau and EarlyStopping; each keeps its own Keras comparison with
 * min_delta, as the two differ in float rounding.
 */
class Monitor {
  /** Whether larger is better. Keras' "auto": metrics with "acc" in their name grow, the rest shrink. */
  readonly increase: boolean;
  best: number;

  constructor(
    private readonly callback: string,
    readonly name: string,
    mode: Mode,
  ) {
    this.increase = mode === 'max' || (mode === 'auto' && name.includes('acc'));
    this.best = this.worst();
  }

  /** The epoch's value of the metric, or undefined (logged) when the epoch did not produce it. */
  read(logs: Record<string, number>, control: TrainerControl): number | undefined {
    const value = logs[this.name];
    if (value === undefined) {
      control.log(`${this.callback}: metric "${this.name}" is not available (have: ${Object.keys(logs).join(', ')}); skipping`);
    }
    return value;
  }

  /** The best value for a checkpoint: JSON has no Infinity, so an unset best is null. */
  bestJson(): number | null {
    return Number.isFinite(this.best) ? this.best : null;
  }

  restoreBest(json: unknown): void {
    this.best = typeof json === 'number' ? json : this.worst();
  }

  private worst(): number {
    return this.increase ? -Infinity : Infinity;
  }
}

/** keras.callbacks.ReduceLROnPlateau, same defaults and the same order of checks. */
export class ReduceLrOnPlateau implements Callback {
  readonly type = 'reduce_lr_on_plateau';
  private readonly monitor: Monitor;
  private readonly factor: number;
  private readonly patience: number;
  private readonly minDelta: number;
  private readonly cooldown: number;
  private readonly minLr: number;
  private wait = 0;
  private cooldownCounter = 0;

  constructor(params: ReduceLrOnPlateauParams = {}) {
    const d = REDUCE_LR_ON_PLATEAU_DEFAULTS;
    this.monitor = new Monitor(this.type, params.monitor ?? d.monitor, params.mode ?? d.mode);
    this.factor = params.factor ?? d.factor;
    if (this.factor >= 1) throw new Error('reduce_lr_on_plateau: factor must be < 1');
    this.patience = params.patience ?? d.patience;
    this.minDelta = params.min_delta ?? d.min_delta;
    this.cooldown = params.cooldown ?? d.cooldown;
    this.minLr = params.min_lr ?? d.min_lr;
  }

  /** Keras' np.less(a, b - min_delta) (np.greater(a, b + min_delta) in max mode). */
  private improved(current: number): boolean {
    const best = this.monitor.best;
    return this.monitor.increase ? current > best + this.minDelta : current < best - this.minDelta;
  }

  onEpochEnd(_epoch: number, logs: Record<string, number>, control: TrainerControl): void {
    const current = this.monitor.read(logs, control);
    if (current === undefined) return;
    if (this.cooldownCounter > 0) {
      this.cooldownCounter -= 1;
      this.wait = 0;
    }
    if (this.improved(current)) {
      this.monitor.best = current;
      this.wait = 0;
    } else if (this.cooldownCounter === 0) {
      this.wait += 1;
      if (this.wait >= this.patience) {
        const oldLr = control.getLearningRate();
        // Keras compares against min_lr in float32, so a rate already at min_lr stays put.
        if (oldLr > Math.fround(this.minLr)) {
          const newLr = Math.max(oldLr * this.factor, this.minLr);
          control.setLearningRate(newLr);
          control.log(`reduce_lr_on_plateau: ${this.monitor.name} did not improve for ${this.wait} epochs; learning rate ${oldLr} -> ${newLr}`);
          this.cooldownCounter = this.cooldown;
          this.wait = 0;
        }
      }
    }
  }

  getState(): CallbackState {
    return { json: { best: this.monitor.bestJson(), wait: this.wait, cooldownCounter: this.cooldownCounter }, tensors: [] };
  }

  setState({ json }: CallbackState): void {
    this.monitor.restoreBest(json.best);
    this.wait = json.wait as number;
    this.cooldownCounter = json.cooldownCounter as number;
  }

  dispose(): void {}
}

/**
 * keras.callbacks.EarlyStopping as in Keras 3: with restore_best_weights the best epoch's
 * weights are put back when training ends, whether or not it stopped early.
 */
export class EarlyStopping implements Callback {
  readonly type = 'early_stopping';
  private readonly monitor: Monitor;
  private readonly patience: number;
  private readonly minDelta: number;
  private readonly baseline: number | undefined;
  private readonly restoreBestWeights: boolean;
  private readonly startFromEpoch: number;
  private bestEpoch = 0;
  private wait = 0;
  private stoppedEpoch = 0;
  private bestWeights: tf.Tensor[] | undefined;

  constructor(params: EarlyStoppingParams = {}) {
    const d = EARLY_STOPPING_DEFAULTS;
    this.monitor = new Monitor(this.type, params.monitor ?? d.monitor, params.mode ?? d.mode);
    this.patience = params.patience ?? d.patience;
    this.minDelta = Math.abs(params.min_delta ?? d.min_delta);
    this.baseline = params.baseline;
    this.restoreBestWeights = params.restore_best_weights ?? d.restore_best_weights;
    this.startFromEpoch = params.start_from_epoch ?? d.start_from_epoch;
  }

  /** Keras' monitor_op(value - min_delta, reference), min_delta negated in min mode. */
  private isImprovement(value: number, reference: number): boolean {
    return this.monitor.increase ? value - this.minDelta > reference : value + this.minDelta < reference;
  }

  private keepWeights(control: TrainerControl): void {
    this.bestWeights?.forEach((w) => w.dispose());
    this.bestWeights = control.getWeights().map((w) => tf.keep(w.clone()));
  }

  onEpochEnd(epoch: number, logs: Record<string, number>, control: TrainerControl): void {
    const current = this.monitor.read(logs, control);
    if (current === undefined || epoch < this.startFromEpoch) return;
    if (this.restoreBestWeights && !this.bestWeights) {
      this.keepWeights(control);
      this.bestEpoch = epoch;
    }
    this.wait += 1;
    if (this.isImprovement(current, this.monitor.best)) {
      this.monitor.best = current;
      this.bestEpoch = epoch;
      if (this.restoreBestWeights) this.keepWeights(control);
      if (this.baseline === undefined || this.isImprovement(current, this.baseline)) this.wait = 0;
      return;
    }
    if (this.wait >= this.patience && epoch > 0) {
      this.stoppedEpoch = epoch;
      control.log(`early_stopping: ${this.monitor.name} did not improve for ${this.wait} epochs; stopping after epoch ${epoch + 1}`);
      control.stopTraining();
    }
  }

  onTrainEnd(control: TrainerControl): void {
    if (this.restoreBestWeights && this.bestWeights) {
      control.log(`early_stopping: restoring the weights of epoch ${this.bestEpoch + 1} (best ${this.monitor.name} = ${this.monitor.best})`);
      control.setWeights(this.bestWeights);
    }
  }

  getState(): CallbackState {
    return {
      json: { best: this.monitor.bestJson(), bestEpoch: this.bestEpoch, wait: this.wait, stoppedEpoch: this.stoppedEpoch, hasBestWeights: !!this.bestWeights },
      tensors: this.bestWeights ?? [],
    };
  }

  setState({ json, tensors }: CallbackState): void {
    this.monitor.restoreBest(json.best);
    this.bestEpoch = json.bestEpoch as number;
    this.wait = json.wait as number;
    this.stoppedEpoch = json.stoppedEpoch as number;
    this.bestWeights?.forEach((w) => w.dispose());
    this.bestWeights = json.hasBestWeights ? tensors : undefined;
  }

  dispose(): void {
    this.bestWeights?.forEach((w) => w.dispose());
    this.bestWeights = undefined;
  }
}
