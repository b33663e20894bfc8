import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { ExperimentConfig } from '../schema/types.ts';
import { EpochRecorder, headerComment, runParams } from './run-record.ts';
import { SystemMetricsSampler } from './system-metrics.ts';
import type { Tracker } from './tracker.ts';

/** A tracker that remembers every call. */
function recordingTracker() {
  const calls: [string, ...unknown[]][] = [];
  const tracker: Tracker = {
    startRun: async () => ({ runId: 'r', experiment: 'e' }),
    logParams: async (params) => void calls.push(['logParams', params]),
    logMetrics: async (metrics, step) => void calls.push(['logMetrics', step, metrics]),
    setTags: async (tags) => void calls.push(['setTags', tags]),
    logArtifact: async (path, content) => void calls.push(['logArtifact', path, 'bytes' in content ? content.bytes : content.file]),
    endRun: async () => undefined,
  };
  return { tracker, calls };
}

const config: ExperimentConfig = {
  name: 'tiny',
  seed: 3,
  backend: 'auto',
  vars: { width: 16 },
  data: { type: 'synthetic', image_shape: [8, 8, 3], transforms: [{ type: 'normalize' }] },
  model: { layers: [{ type: 'dense', units: 16 }, { type: 'dense', units: 4, name: 'logits' }] },
  train: { epochs: 2, batch_size: 32, optimizer: { type: 'adamw', learning_rate: 0.001, weight_decay: 1e-4, clip: { norm: 1 } } },
  tracking: { uri: 'http://127.0.0.1:5000', tags: { 'team name!': 'vision' } },
};

describe('what a run records', () => {
  it('params: every leaf of the config once, by its path (a named layer by its name), with MLflow-safe keys', () => {
    expect(runParams(config, { countParams: () => 1234 })).toEqual({
      name: 'tiny',
      seed: 3,
      backend_request: 'auto',
      'vars.width': 16,
      'data.type': 'synthetic',
      'data.image_shape': '[8,8,3]',
      'data.transforms.0.type': 'normalize',
      'model.layers.0.type': 'dense',
      'model.layers.0.units': 16,
      // Keyed by name: a layer inserted before it renames nothing.
      'model.layers.logits.type': 'dense',
      'model.layers.logits.units': 4,
      'train.epochs': 2,
      'train.batch_size': 32,
      'train.optimizer.type': 'adamw',
      'train.optimizer.learning_rate': 0.001,
      'train.optimizer.weight_decay': 1e-4,
      'train.optimizer.clip.norm': 1,
      'tracking.uri': 'http://127.0.0.1:5000',
      'tracking.tags.team name_': 'vision',
      model_params: 1234,
    });
  });

  it('never records user info of a URI, a query token or a secret-named value', () => {
    const secret = { ...config, tracking: { uri: 'https://bob:pa55@mlflow.example.com/x?token=t0k3n', tags: { api_token: 'k3y' } } };
    const params = runParams(secret, { countParams: () => 1 });
    expect(params['tracking.uri']).toBe('https://bob:****@mlflow.example.com/x?token=****');
    expect(params['tracking.tags.api_token']).toBe('****');
    expect(JSON.stringify(params)).not.toMatch(/pa55|t0k3n|k3y/);
  });

  it('the note is the comment block at the top of the file, without the schema directive', () => {
    const text = ['# yaml-language-server: $schema=../schema/experiment.schema.json', '# FNet on CIFAR-100.', '#', '#   Run: exp run x.yaml', 'name: x', '# not this'].join('\n');
    expect(headerComment(text)).toBe('FNet on CIFAR-100.\n\n  Run: exp run x.yaml');
    expect(headerComment('name: x\n')).toBe('');
  });
});

describe('EpochRecorder', () => {
  it('logs each epoch (step = epoch), and best_model/ whenever val_loss improves (continuing a resumed history)', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
    const { tracker, calls } = recordingTracker();
    const recorder = new EpochRecorder(tracker, model, { history: [{ step: 1, val_loss: 1.6, time: 'x' }] });
    const tensors = tf.memory().numTensors;
    for (const [epoch, val_loss] of [[2, 2], [3, 1.5], [4, 1.7], [5, 1.2]] as const) await recorder.epochEnd(epoch, { loss: 1, val_loss });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(calls.filter(([kind]) => kind === 'logMetrics')[0]).toEqual([
      'logMetrics',
      2,
      { loss: 1, val_loss: 2 },
    ]);
    expect(calls.filter(([kind]) => kind === 'setTags').map(([, tags]) => tags)).toEqual([
      { 'tessera.best_epoch': '3', 'tessera.best_value': '1.5' },
      { 'tessera.best_epoch': '5', 'tessera.best_value': '1.2' },
    ]);
    const artifacts = calls.filter(([kind]) => kind === 'logArtifact');
    expect(artifacts.map(([, path]) => path)).toEqual(['best_model/model.json', 'best_model/weights.bin', 'best_model/model.json', 'best_model/weights.bin']);
    // 3x2 kernel + 2 biases as float32.
    expect((artifacts[1]![2] as Uint8Array).byteLength).toBe(8 * 4);
    expect(JSON.parse(artifacts[0]![2] as string).weightsManifest[0].paths).toEqual(['weights.bin']);
    model.dispose();
  });

  it('logs the `first` metric (a sweep trial\u2019s objective) before the others, so MLflow\u2019s compare page defaults to it', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
    const { tracker, calls } = recordingTracker();
    await new EpochRecorder(tracker, model, { first: 'val_accuracy' }).epochEnd(1, { loss: 1, accuracy: 0.5, val_loss: 2, val_accuracy: 0.25 });
    await new EpochRecorder(tracker, model, { first: 'test_accuracy' }).epochEnd(1, { loss: 1, val_loss: 2 });
    const logged = calls.filter(([kind]) => kind === 'logMetrics').map(([, , metrics]) => Object.keys(metrics as object));
    expect(logged).toEqual([
      ['val_accuracy', 'loss', 'accuracy', 'val_loss'],
      ['loss', 'val_loss'],
    ]);
    model.dispose();
  });

  it('a model that cannot be saved: one note, no best_model/, training records go on', async () => {
    const unsavable = { save: async () => Promise.reject(new Error('layer X has no getConfig')) } as unknown as tf.LayersModel;
    const { tracker, calls } = recordingTracker();
    const notes: string[] = [];
    const recorder = new EpochRecorder(tracker, unsavable, { log: (m) => notes.push(m) });
    await recorder.epochEnd(1, { loss: 2 });
    await recorder.epochEnd(2, { loss: 1 });
    expect(notes).toEqual(['note: no best_model/ artifact: the model cannot be saved in the TF.js format (layer X has no getConfig)']);
    expect(calls.map(([kind]) => kind)).toEqual(['logMetrics', 'logMetrics']);
  });
});
