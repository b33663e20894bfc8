import { describe, expect, it } from 'vitest';
import { trialRunName } from './space.ts';

describe('trialRunName: a trial named by what it tried', () => {
  it('uses each path\u2019s last segment, the usual short names, and 4 significant digits', () => {
    expect(trialRunName('trial-003', { 'train.optimizer.learning_rate': 0.003, 'model.layers.1.units': 32 })).toBe('trial-003 lr=0.003 units=32');
    expect(
      trialRunName('trial-000', {
        'train.optimizer.learning_rate': 0.03638061019948218,
        'train.optimizer.weight_decay': 0.00012346,
        'train.batch_size': 40,
        'model.vars.embedding_dim': 256,
        'train.optimizer.type': 'adamw',
      }),
    ).toBe('trial-000 lr=0.03638 wd=0.0001235 bs=40 dim=256 type=adamw');
  });

  it('names two params that end alike by their whole paths', () => {
    expect(trialRunName('trial-001', { 'model.layers.1.units': 16, 'model.layers.3.units': 8, 'train.epochs': 2 })).toBe(
      'trial-001 model.layers.1.units=16 model.layers.3.units=8 epochs=2',
    );
  });
});
