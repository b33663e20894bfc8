import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { EarlyStopping, ReduceLrOnPlateau, type Callback, type TrainerControl } from './callbacks.ts';

// Expected sequences come from a Python transcription of Keras 3's on_epoch_end code
// (keras/src/callbacks/{reduce_lr_on_plateau,early_stopping}.py), run on the same inputs.

/** A trainer stand-in whose only weight is a scalar equal to the epoch that produced it. */
function fakeTrainer(learningRate = 1) {
  let lr = learningRate;
  let weight: tf.Tensor = tf.scalar(-1);
  const state = { stopped: false, messages: [] as string[] };
  const control: TrainerControl = {
    getLearningRate: () => lr,
    setLearningRate: (v) => {
      lr = v;
    },
    getWeights: () => [weight],
    setWeights: ([w]) => {
      weight = w!.clone();
    },
    stopTraining: () => {
      state.stopped = true;
    },
    log: (m) => state.messages.push(m),
  };
  return { control, state, lr: () => lr, weight: () => weight.dataSync()[0], setEpoch: (e: number) => (weight = tf.scalar(e)) };
}

function drive(callback: Callback, values: number[], trainer = fakeTrainer(), monitor = 'val_loss') {
  const lrs: number[] = [];
  let stoppedAt: number | undefined;
  for (const [epoch, value] of values.entries()) {
    trainer.setEpoch(epoch);
    callback.onEpochEnd?.(epoch, { loss: 0, [monitor]: value }, trainer.control);
    lrs.push(trainer.lr());
    if (trainer.state.stopped) {
      stoppedAt = epoch;
      break;
    }
  }
  callback.onTrainEnd?.(trainer.control);
  return { lrs, stoppedAt, trainer };
}

describe('ReduceLROnPlateau', () => {
  it('follows Keras through patience, cooldown and min_lr (compared in float32)', () => {
    const cb = new ReduceLrOnPlateau({ factor: 0.5, patience: 2, min_delta: 0, cooldown: 1, min_lr: 0.3 });
    const { lrs } = drive(cb, [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(lrs).toEqual([1, 1, 1, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]);
  });

  it('needs an improvement larger than min_delta (default 1e-4)', () => {
    const { lrs } = drive(new ReduceLrOnPlateau({ factor: 0.5, patience: 1 }), [1.0, 0.99995, 0.9999, 0.9998]);
    expect(lrs).toEqual([1, 0.5, 0.25, 0.25]);
  });

  it('watches accuracy upwards in auto mode', () => {
    const { lrs } = drive(new ReduceLrOnPlateau({ monitor: 'val_accuracy', factor: 0.5, patience: 1 }), [0.1, 0.2, 0.15], fakeTrainer(), 'val_accuracy');
    expect(lrs).toEqual([1, 1, 0.5]);
  });

  it('carries its counters through getState/setState', () => {
    const a = new ReduceLrOnPlateau({ factor: 0.5, patience: 2, min_delta: 0 });
    const trainer = fakeTrainer();
    drive(a, [1.0, 1.1], trainer);
    const b = new ReduceLrOnPlateau({ factor: 0.5, patience: 2, min_delta: 0 });
    b.setState(JSON.parse(JSON.stringify(a.getState())));
    b.onEpochEnd(2, { val_loss: 1.2 }, trainer.control);
    expect(trainer.lr()).toBe(0.5);
  });
});

describe('EarlyStopping', () => {
  it('stops after `patience` epochs without improvement and restores the best weights', () => {
    const cb = new EarlyStopping({ patience: 2, restore_best_weights: true });
    const { stoppedAt, trainer } = drive(cb, [0.9, 0.8, 0.85, 0.7, 0.75, 0.76, 0.77, 0.6]);
    expect(stoppedAt).toBe(5);
    expect(trainer.weight()).toBe(3); // the weights of epoch 3, where val_loss was 0.7
  });

  it('restores the best weights at the end even without stopping (Keras 3)', () => {
    const { stoppedAt, trainer } = drive(new EarlyStopping({ patience: 3, restore_best_weights: true }), [0.9, 0.8, 0.85, 0.7, 0.75, 0.76]);
    expect(stoppedAt).toBeUndefined();
    expect(trainer.weight()).toBe(3);
  });

  it('ignores improvements smaller than min_delta', () => {
    const { stoppedAt, trainer } = drive(new EarlyStopping({ patience: 1, min_delta: 0.05, restore_best_weights: true }), [0.9, 0.8, 0.79, 0.78]);
    expect(stoppedAt).toBe(2);
    expect(trainer.weight()).toBe(1);
  });

  it('leaves the weights alone without restore_best_weights', () => {
    const { stoppedAt, trainer } = drive(new EarlyStopping({ patience: 1 }), [0.5, 0.6, 0.7]);
    expect(stoppedAt).toBe(1);
    expect(trainer.weight()).toBe(1);
  });

  it('resumes with its best weights from a saved state', () => {
    const a = new EarlyStopping({ patience: 2, restore_best_weights: true });
    const first = drive(a, [0.9, 0.5, 0.6]);
    const saved = a.getState();
    const b = new EarlyStopping({ patience: 2, restore_best_weights: true });
    b.setState({ json: JSON.parse(JSON.stringify(saved.json)), tensors: saved.tensors.map((t) => t.clone()) });
    const trainer = first.trainer;
    trainer.setEpoch(3);
    b.onEpochEnd(3, { val_loss: 0.7 }, trainer.control);
    expect(trainer.state.stopped).toBe(true);
    b.onTrainEnd(trainer.control);
    expect(trainer.weight()).toBe(1);
  });
});
