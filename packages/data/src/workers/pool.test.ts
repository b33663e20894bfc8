import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { createRegistries, type Dataset, type Registries } from '@tessera/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerData } from '../index.ts';
import { batchesMadeByWorkers, defaultWorkerCount } from './pool.ts';

let registries: Registries;
beforeAll(async () => {
  await tf.setBackend('cpu');
  registries = registerData(createRegistries());
});

const transforms = [
  { type: 'normalize' },
  { type: 'random_flip' },
  { type: 'random_crop', padding: 2 },
  { type: 'mixup', alpha: 0.4 },
];
const make = (workers: number): Promise<Dataset> =>
  registries.datasets
    .get('synthetic')
    .create({ train_size: 45, test_size: 10, num_classes: 5, image_shape: [8, 8, 3], transforms, workers }, { configDir: '.', seed: 3, registries, log: () => {} });

async function epoch(ds: Dataset, epochIndex: number) {
  const out: { x: number[]; y: number[]; soft: number[] }[] = [];
  for await (const b of ds.batches('train', { batchSize: 8, training: true, seed: 11, epoch: epochIndex })) {
    out.push({ x: [...(await b.x.data())], y: [...(await b.y.data())], soft: b.yOneHot ? [...(await b.yOneHot.data())] : [] });
    tf.dispose([b.x, b.y, b.yOneHot]);
  }
  return out;
}

describe('batch workers', () => {
  it('make the same batches (shuffle, flips, crops, mixup) with 1 or 3 workers as on the training thread', async () => {
    const before = batchesMadeByWorkers().reduce((a, b) => a + b, 0);
    const inline = await epoch(await make(0), 2);
    expect(batchesMadeByWorkers().reduce((a, b) => a + b, 0)).toBe(before);
    const one = await epoch(await make(1), 2);
    const three = await epoch(await make(3), 2);
    expect(inline).toHaveLength(6);
    expect(inline[5]!.y).toHaveLength(5); // 45 = 5 * 8 + 5: the last partial batch is kept
    expect(inline[0]!.soft).toHaveLength(8 * 5);
    expect(one).toEqual(inline);
    expect(three).toEqual(inline);
    // The batches were made in the workers (12 of them), and spread over the three.
    const made = batchesMadeByWorkers();
    expect(made.reduce((a, b) => a + b, 0) - before).toBe(12);
    expect(made.length).toBeGreaterThanOrEqual(3);
    // Another epoch is another shuffle and other augmentations, still equal across counts.
    const next = await epoch(await make(3), 3);
    expect(next).not.toEqual(inline);
    expect(next).toEqual(await epoch(await make(0), 3));
  });

  it('stops cleanly when the consumer stops early, leaking no tensors', async () => {
    const ds = await make(2);
    const before = tf.memory().numTensors;
    for await (const b of ds.batches('train', { batchSize: 4, training: true, seed: 1, epoch: 0 })) {
      tf.dispose([b.x, b.y, b.yOneHot]);
      break;
    }
    expect(tf.memory().numTensors).toBe(before);
    const rest = await epoch(ds, 0);
    expect(rest).toHaveLength(6);
  });

  it('defaults to the cores left after training (at most 4), none on the native backend, or TESSERA_DATA_WORKERS', () => {
    expect(defaultWorkerCount({ TESSERA_DATA_WORKERS: '0' }, 'wasm')).toBe(0);
    expect(defaultWorkerCount({ TESSERA_DATA_WORKERS: '3' }, 'tensorflow')).toBe(3);
    expect(defaultWorkerCount({}, 'wasm')).toBe(Math.max(1, Math.min(4, availableParallelism() - 1)));
    expect(defaultWorkerCount({}, 'cpu')).toBeGreaterThanOrEqual(1);
    expect(defaultWorkerCount({}, 'tensorflow')).toBe(0);
  });
});
