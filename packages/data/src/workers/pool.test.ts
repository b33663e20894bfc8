import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { createRegistries, loadPlugins, type Dataset, type Registries } from '@tessera/core';
import { fileURLToPath } from 'node:url';
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

  it("load the plugins whose transforms a pipeline uses (TypeScript, as the training thread did) and make the same batches", async () => {
    const withPlugin = registerData(createRegistries());
    await loadPlugins(withPlugin, [{ path: fileURLToPath(new URL('./__fixtures__/scale-plugin.ts', import.meta.url)), baseDir: '/', yamlPath: ['plugins', 0] }]);
    const logs: string[] = [];
    const pipeline = (workers: number, scale: boolean) =>
      withPlugin.datasets.get('synthetic').create(
        {
          train_size: 20,
          test_size: 4,
          num_classes: 3,
          image_shape: [8, 8, 3],
          transforms: [{ type: 'normalize' }, { type: 'random_flip' }, ...(scale ? [{ type: 'test_scale', factor: -2 }] : [])],
          workers,
        },
        { configDir: '.', seed: 5, registries: withPlugin, log: (message: string) => logs.push(message) },
      );
    const before = batchesMadeByWorkers().reduce((a, b) => a + b, 0);
    const inline = await epoch(await pipeline(0, true), 1);
    const two = await epoch(await pipeline(2, true), 1);
    expect(logs.filter((line) => /not built in/.test(line))).toEqual([]);
    expect(batchesMadeByWorkers().reduce((a, b) => a + b, 0) - before).toBe(3); // 20 images, batches of 8
    expect(two).toEqual(inline);
    // The plugin's transform acted in the workers: -2 x the batches without it (same flips).
    const plain = await epoch(await pipeline(0, false), 1);
    two.forEach((batch, b) => batch.x.forEach((v, i) => expect(v).toBeCloseTo(-2 * plain[b]!.x[i]!, 5)));
  });

  it('make a pipeline\'s batches on the training thread, saying why once, when a plugin fails to load in the workers', async () => {
    const withPlugin = registerData(createRegistries());
    const plugin = fileURLToPath(new URL('./__fixtures__/main-thread-plugin.mjs', import.meta.url));
    await loadPlugins(withPlugin, [{ path: plugin, baseDir: '/', yamlPath: ['plugins', 0] }]);
    const logs: string[] = [];
    const pipeline = (workers: number) =>
      withPlugin.datasets.get('synthetic').create(
        { train_size: 20, test_size: 4, num_classes: 3, image_shape: [8, 8, 3], transforms: [{ type: 'normalize' }, { type: 'random_flip' }, { type: 'test_triple' }], workers },
        { configDir: '.', seed: 5, registries: withPlugin, log: (message: string) => logs.push(message) },
      );
    const inline = await epoch(await pipeline(0), 1);
    const ds = await pipeline(2);
    const before = batchesMadeByWorkers().reduce((a, b) => a + b, 0);
    // Every batch, the ones the workers failed included, made here: the same as without workers.
    expect(await epoch(ds, 1)).toEqual(inline);
    expect(await epoch(ds, 1)).toEqual(inline);
    expect(logs).toEqual([
      expect.stringMatching(/^the batch workers could not set up this pipeline \(.*plugin ".*main-thread-plugin\.mjs" failed to load: this plugin loads only on the main thread\): batches are made on the training thread$/),
    ]);
    expect(batchesMadeByWorkers().reduce((a, b) => a + b, 0)).toBe(before);
  });

  it("keep a transform a program registered by hand on the training thread: the workers could not rebuild it", async () => {
    const own = registerData(createRegistries());
    own.transforms.register({ type: 'hand_scale', description: '', params: {}, create: () => ({ random: false, outputShape: (shape: number[]) => shape, apply: (x: tf.Tensor4D) => x.mul(2) }) });
    const logs: string[] = [];
    const before = batchesMadeByWorkers().reduce((a, b) => a + b, 0);
    const ds = await own.datasets
      .get('synthetic')
      .create({ train_size: 16, test_size: 4, num_classes: 3, image_shape: [8, 8, 3], transforms: [{ type: 'hand_scale' }], workers: 2 }, { configDir: '.', seed: 5, registries: own, log: (m: string) => logs.push(m) });
    expect(await epoch(ds, 0)).toHaveLength(2);
    expect(logs).toEqual(['transforms hand_scale are not built in (nor from a plugin the batch workers can load): batches are made on the training thread']);
    expect(batchesMadeByWorkers().reduce((a, b) => a + b, 0)).toBe(before);
  });

  it('defaults to the cores left after training (at most 4), none on the native backend, or TESSERA_DATA_WORKERS', () => {
    expect(defaultWorkerCount({ TESSERA_DATA_WORKERS: '0' }, 'wasm')).toBe(0);
    expect(defaultWorkerCount({ TESSERA_DATA_WORKERS: '3' }, 'tensorflow')).toBe(3);
    expect(defaultWorkerCount({}, 'wasm')).toBe(Math.max(1, Math.min(4, availableParallelism() - 1)));
    expect(defaultWorkerCount({}, 'cpu')).toBeGreaterThanOrEqual(1);
    expect(defaultWorkerCount({}, 'tensorflow')).toBe(0);
  });
});
