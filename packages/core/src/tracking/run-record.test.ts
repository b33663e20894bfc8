import { describe, expect, it } from 'vitest';
import type { ExperimentConfig } from '../schema/types.ts';
import { headerComment, redactConfig, runParams } from './run-record.ts';

const config: ExperimentConfig = {
  name: 'tiny',
  seed: 3,
  backend: 'auto',
  vars: { width: 16 },
  data: { type: 'synthetic', image_shape: [8, 8, 3], transforms: [{ type: 'normalize' }] },
  model: { layers: [{ type: 'dense', units: 16 }] },
  train: { epochs: 2, batch_size: 32, optimizer: { type: 'adamw', learning_rate: 0.001, weight_decay: 1e-4, clip: { norm: 1 } } },
  tracking: { uri: 'http://127.0.0.1:5000', tags: { 'team name!': 'vision' } },
};

describe('what a run records', () => {
  it('params: every leaf of the config by its path, plus the short names, with MLflow-safe keys', () => {
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
      'train.epochs': 2,
      'train.batch_size': 32,
      'train.optimizer.type': 'adamw',
      'train.optimizer.learning_rate': 0.001,
      'train.optimizer.weight_decay': 1e-4,
      'train.optimizer.clip.norm': 1,
      'tracking.uri': 'http://127.0.0.1:5000',
      'tracking.tags.team name_': 'vision',
      epochs: 2,
      batch_size: 32,
      optimizer_name: 'adamw',
      optimizer_learning_rate: 0.001,
      optimizer_weight_decay: 1e-4,
      'optimizer_clip.norm': 1,
      model_params: 1234,
    });
  });

  it('never records user info of a URI', () => {
    const secret = { ...config, tracking: { uri: 'https://bob:pa55@mlflow.example.com/x' } };
    expect(redactConfig(secret).tracking!.uri).toBe('https://mlflow.example.com/x');
    expect(JSON.stringify(runParams(secret, { countParams: () => 1 }))).not.toContain('pa55');
    expect(redactConfig(config)).toBe(config);
  });

  it('the note is the comment block at the top of the file, without the schema directive', () => {
    const text = ['# yaml-language-server: $schema=../schema/experiment.schema.json', '# FNet on CIFAR-100.', '#', '#   Run: exp run x.yaml', 'name: x', '# not this'].join('\n');
    expect(headerComment(text)).toBe('FNet on CIFAR-100.\n\n  Run: exp run x.yaml');
    expect(headerComment('name: x\n')).toBe('');
  });
});
