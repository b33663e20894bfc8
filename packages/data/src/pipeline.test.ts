import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, createRegistries, experimentValidator, type Batch, type Dataset, type DatasetContext, type Registries } from '@tessera/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerData } from './index.ts';
import { createPipeline, restoreTransforms, transformStateKeys } from './pipeline.ts';
import { channelMoments, range, type ImageSet } from './store.ts';

const realDir = fileURLToPath(new URL('../../../../shared/data/cifar-100', import.meta.url));
const cache = mkdtempSync(join(tmpdir(), 'tessera-pipeline-'));
let registries: Registries;
const logs: string[] = [];
const ctx = (over: Partial<DatasetContext> = {}): DatasetContext => ({ configDir: cache, seed: 42, registries, log: (m) => logs.push(m), ...over });

beforeAll(async () => {
  await tf.setBackend('cpu');
  registries = registerData(createRegistries());
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

/** n 2x2x1 images whose pixels all equal the image's index, label index % 10. */
function indexed(n: number): ImageSet {
  return {
    bytes: Uint8Array.from({ length: n * 4 }, (_, i) => Math.floor(i / 4)),
    labels: Uint8Array.from({ length: n }, (_, i) => i % 10),
    count: n,
    height: 2,
    width: 2,
    channels: 1,
    offset: 0,
    stride: 4,
  };
}

async function indexedPipeline(n: number, validation = 0): Promise<Dataset> {
  const set = indexed(n);
  const cut = n - validation;
  return createPipeline({
    info: { name: 'indexed', numClasses: 10, fingerprint: 'x' },
    splits: { train: { set, indices: range(0, cut) }, validation: { set, indices: range(cut, n) }, test: { set, indices: range(0, 0) } },
    adaptOn: set,
    transforms: [],
    log: () => {},
  });
}

/** The image indices of each batch, read back from the pixel values. */
async function collect(ds: Dataset, split: 'train' | 'validation', options: { batchSize: number; training: boolean; seed?: number; epoch?: number }) {
  const out: number[][] = [];
  for await (const batch of ds.batches(split, { seed: 1, epoch: 0, ...options })) {
    const means = tf.mean(batch.x, [1, 2, 3]);
    out.push([...means.dataSync()].map(Math.round));
    means.dispose();
    dispose(batch);
  }
  return out;
}
const dispose = (b: Batch) => tf.dispose([b.x, b.y, ...(b.yOneHot ? [b.yOneHot] : [])]);

describe('registerData', () => {
  it('registers the datasets and transforms with their params schemas', () => {
    expect(registries.datasets.types()).toEqual(['cifar10', 'cifar100', 'fashion_mnist', 'image_folder', 'manifest', 'mnist', 'synthetic']);
    expect(registries.transforms.types()).toEqual(['auto_augment', 'cutmix', 'mixup', 'normalize', 'rand_augment', 'random_crop', 'random_flip', 'random_rotation', 'random_zoom', 'resize']);
    const props = registries.datasets.get('cifar100').params.properties as Record<string, any>;
    expect(props.transforms.items).toEqual({ $ref: '#/$defs/transform' });
    expect(Object.keys(props)).toEqual(expect.arrayContaining(['dir', 'label_mode', 'validation_split', 'validation_file', 'download']));
    for (const entry of [...registries.datasets.list(), ...registries.transforms.list()]) {
      expect(entry.params.additionalProperties).toBe(false);
      expect(entry.params.type).toBeUndefined();
    }
  });
});

describe('the assembled experiment schema', () => {
  it('accepts the reference data section and refuses bad transform params (strict ajv)', () => {
    const validate = experimentValidator(registries);
    const dataErrors = (data: unknown) => {
      validate({ name: 'x', data });
      return (validate.errors ?? []).filter((e) => e.instancePath.startsWith('/data')).map((e) => `${e.instancePath} ${e.message}`);
    };
    const reference = {
      type: 'cifar100',
      validation_split: 0.1,
      transforms: [
        { type: 'normalize' },
        { type: 'resize', height: 64, width: 64 },
        { type: 'random_flip', mode: 'horizontal' },
        { type: 'random_zoom', height_factor: 0.2, width_factor: 0.2 },
      ],
    };
    expect(dataErrors(reference)).toEqual([]);
    expect(dataErrors({ ...reference, validation_split: 1 })).toContain('/data/validation_split must be < 1');
    expect(dataErrors({ type: 'cifar100', transforms: [{ type: 'resize', height: 64 }] })).toContain("/data/transforms/0 must have required property 'width'");
    expect(dataErrors({ type: 'cifar100', label_mode: 'medium' })).toContain('/data/label_mode must be equal to one of the allowed values');
  });
});

describe('batching', () => {
  it('keeps the last partial batch and serves each example once per epoch', async () => {
    const ds = await indexedPipeline(10);
    expect(ds.numBatches('train', 4)).toBe(3);
    const batches = await collect(ds, 'train', { batchSize: 4, training: true });
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flat().sort((a, b) => a - b)).toEqual([...range(0, 10)]);
  });

  it('replays the same shuffle for the same seed and epoch, another for the next epoch', async () => {
    const ds = await indexedPipeline(50);
    const a = (await collect(ds, 'train', { batchSize: 50, training: true, epoch: 3 })).flat();
    const b = (await collect(ds, 'train', { batchSize: 50, training: true, epoch: 3 })).flat();
    const c = (await collect(ds, 'train', { batchSize: 50, training: true, epoch: 4 })).flat();
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect([...c].sort((x, y) => x - y)).toEqual([...a].sort((x, y) => x - y));
    expect((await collect(ds, 'train', { batchSize: 50, training: false })).flat()).toEqual([...range(0, 50)]);
  });

  it('leaks no tensors, even when the consumer stops early', async () => {
    const ds = await indexedPipeline(20);
    await collect(ds, 'train', { batchSize: 8, training: true }); // warm-up
    const before = tf.memory().numTensors;
    await collect(ds, 'train', { batchSize: 8, training: true });
    for await (const batch of ds.batches('train', { batchSize: 8, training: true, seed: 1, epoch: 0 })) {
      dispose(batch);
      break;
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('transforms in the pipeline', () => {
  it('the dataset reports the shape it stores (rawShape, what a saved model takes) besides the shape the model sees', async () => {
    const params = { train_size: 4, num_classes: 2, image_shape: [6, 6, 1], transforms: [{ type: 'resize', height: 8, width: 8 }] };
    const ds = await registries.datasets.get('synthetic').create(params, ctx());
    expect(ds.info.rawShape).toEqual([6, 6, 1]);
    expect(ds.info.inputShape).toEqual([8, 8, 1]);
  });

  it('leak no tensors across epochs with every transform configured', async () => {
    const ds = await registries.datasets.get('synthetic').create(
      {
        train_size: 20,
        num_classes: 3,
        image_shape: [6, 6, 3],
        transforms: [
          { type: 'normalize' },
          { type: 'resize', height: 8, width: 8 },
          { type: 'random_flip', mode: 'horizontal_and_vertical' },
          { type: 'random_rotation', factor: 0.02 },
          { type: 'random_zoom', height_factor: 0.2 },
          { type: 'random_crop', padding: 1 },
          { type: 'mixup' },
          { type: 'cutmix' },
        ],
      },
      ctx(),
    );
    await collect(ds, 'train', { batchSize: 8, training: true });
    const before = tf.memory().numTensors;
    await collect(ds, 'train', { batchSize: 8, training: true, epoch: 1 });
    await collect(ds, 'validation', { batchSize: 8, training: false });
    const raw = tf.zeros([2, 6, 6, 3], 'int32') as tf.Tensor4D;
    tf.dispose([raw, ds.preprocess(raw)]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('synthetic dataset', () => {
  it('holds out the LAST 10% for validation, before any shuffle', async () => {
    const ds = await registries.datasets.get('synthetic').create({ train_size: 100, test_size: 30, num_classes: 7, validation_split: 0.1, image_shape: [4, 4, 3] }, ctx());
    expect(ds.info.counts).toEqual({ train: 90, validation: 10, test: 30 });
    expect(ds.info.inputShape).toEqual([4, 4, 3]);
    const labels: number[] = [];
    for await (const batch of ds.batches('validation', { batchSize: 4, training: false, seed: 1, epoch: 0 })) {
      labels.push(...batch.y.dataSync());
      dispose(batch);
    }
    expect(labels).toEqual([90, 91, 92, 93, 94, 95, 96, 97, 98, 99].map((i) => i % 7));
  });

  it('is learnable: a nearest-class-mean classifier on the training set beats chance by far on the test set', async () => {
    const ds = await registries.datasets.get('synthetic').create({ train_size: 200, test_size: 100, num_classes: 5, image_shape: [4, 4, 3], noise: 60 }, ctx());
    const [trainBatch] = await toArray(ds.batches('train', { batchSize: 200, training: false, seed: 1, epoch: 0 }));
    const [testBatch] = await toArray(ds.batches('test', { batchSize: 100, training: false, seed: 1, epoch: 0 }));
    const accuracy = tf.tidy(() => {
      const x = trainBatch!.x.reshape([200, -1]);
      const oneHot = tf.oneHot(trainBatch!.y, 5).toFloat();
      const means = tf.matMul(oneHot, x, true, false).div(tf.sum(oneHot, 0).reshape([5, 1]));
      const t = testBatch!.x.reshape([100, -1]);
      const distances = tf.sub(tf.sum(tf.square(means), 1).reshape([1, 5]), tf.mul(2, tf.matMul(t, means, false, true)));
      return tf.mean(tf.equal(tf.argMin(distances, 1), testBatch!.y).toFloat()).dataSync()[0]!;
    });
    expect(accuracy).toBeGreaterThan(0.9);
  });

  it('adapts normalize on the training images, reports it as state, and preprocess applies it', async () => {
    const ds = await registries.datasets.get('synthetic').create(
      { train_size: 50, image_shape: [4, 4, 3], transforms: [{ type: 'normalize' }, { type: 'resize', height: 8, width: 8 }, { type: 'random_flip' }] },
      ctx(),
    );
    expect(ds.info.inputShape).toEqual([8, 8, 3]);
    const state = ds.state() as { normalize: { mean: number[]; variance: number[] } };
    expect(state.normalize.mean).toHaveLength(3);
    // Pushed through preprocess, the training images come out with zero mean and unit variance.
    const [batch] = await toArray(ds.batches('train', { batchSize: 50, training: false, seed: 1, epoch: 0 }));
    const { mean } = tf.moments(batch!.x, [0, 1, 2]);
    for (const m of mean.dataSync()) expect(m).toBeCloseTo(0, 1);
    const again = tf.tidy(() => ds.preprocess(tf.zeros([1, 4, 4, 3], 'int32') as tf.Tensor4D));
    expect(again.shape).toEqual([1, 8, 8, 3]);
    expect(again.dataSync()[0]).toBeCloseTo(-state.normalize.mean[0]! / Math.sqrt(state.normalize.variance[0]!), 4);
    tf.dispose([again, mean]);
    dispose(batch!);
  });

  it('rebuilds the same preprocessing from the saved state alone (for inference)', async () => {
    const specs = [{ type: 'normalize' }, { type: 'resize', height: 6, width: 6 }, { type: 'random_flip' }];
    const ds = await registries.datasets.get('synthetic').create({ train_size: 30, image_shape: [4, 4, 3], transforms: specs }, ctx());
    const saved = JSON.parse(JSON.stringify(ds.state()));
    const transforms = restoreTransforms(specs, saved, registries);
    const raw = tf.randomUniform([3, 4, 4, 3], 0, 255, 'int32') as tf.Tensor4D;
    const expected = ds.preprocess(raw);
    const got = tf.tidy(() => transforms.reduce((x, t) => (t.random ? x : t.apply(x, { training: false, seed: 0 })), tf.cast(raw, 'float32') as tf.Tensor4D));
    expect(got.dataSync()).toEqual(expected.dataSync());
    expect(transformStateKeys(['normalize', 'resize', 'normalize'])).toEqual(['normalize_0', 'resize', 'normalize_2']);
    tf.dispose([raw, expected, got]);
  });

  it('gives soft labels when mixup is configured, in training only', async () => {
    const ds = await registries.datasets.get('synthetic').create({ train_size: 16, num_classes: 4, image_shape: [2, 2, 1], transforms: [{ type: 'mixup', alpha: 1 }] }, ctx());
    const [train] = await toArray(ds.batches('train', { batchSize: 16, training: true, seed: 3, epoch: 0 }));
    expect(train!.yOneHot?.shape).toEqual([16, 4]);
    for (const s of tf.sum(train!.yOneHot!, 1).dataSync()) expect(s).toBeCloseTo(1, 5);
    const [test] = await toArray(ds.batches('test', { batchSize: 16, training: false, seed: 3, epoch: 0 }));
    expect(test!.yOneHot).toBeUndefined();
    dispose(train!);
    dispose(test!);
  });
});

describe('validation options', () => {
  it('holds out the FIRST examples with validation_from: start (the ConvMixer example\'s x_train[:n])', async () => {
    const ds = await registries.datasets
      .get('synthetic')
      .create({ train_size: 40, num_classes: 40, image_shape: [2, 2, 1], validation_split: 0.25, validation_from: 'start' }, ctx());
    expect(ds.info.counts).toEqual({ train: 30, validation: 10, test: 200 });
    const [batch] = await toArray(ds.batches('validation', { batchSize: 100, training: false, seed: 1, epoch: 0 }));
    expect([...batch!.y.dataSync()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    dispose(batch!);
    const [train] = await toArray(ds.batches('train', { batchSize: 100, training: false, seed: 1, epoch: 0 }));
    expect([...train!.y.dataSync()].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 10));
    dispose(train!);
  });

  it('holds out a seeded random subset with validation_shuffle', async () => {
    const create = (seed: number) =>
      registries.datasets.get('synthetic').create({ train_size: 40, num_classes: 40, image_shape: [2, 2, 1], validation_split: 0.25, validation_shuffle: true }, ctx({ seed }));
    const labels = async (ds: Dataset) => {
      const [batch] = await toArray(ds.batches('validation', { batchSize: 100, training: false, seed: 1, epoch: 0 }));
      const out = [...batch!.y.dataSync()];
      dispose(batch!);
      return out;
    };
    const a = await labels(await create(5));
    expect(a).toHaveLength(10);
    expect(a).toEqual(await labels(await create(5)));
    expect(a).not.toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
    expect(await labels(await create(6))).not.toEqual(a);
  });

  it('uses validation_file as the validation set, relative to the experiment', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const dir = join(cache, 'vf');
    mkdirSync(dir, { recursive: true });
    const record = (fine: number) => Buffer.concat([Buffer.from([0, fine]), Buffer.alloc(3072, fine)]);
    writeFileSync(join(dir, 'train.bin'), Buffer.concat([1, 2, 3, 4].map(record)));
    writeFileSync(join(dir, 'test.bin'), record(5));
    writeFileSync(join(dir, 'val.bin'), Buffer.concat([7, 8].map(record)));
    const ds = await registries.datasets.get('cifar100').create({ dir: '.', validation_file: 'val.bin', cache_dir: join(cache, 'c3') }, ctx({ configDir: dir }));
    expect(ds.info.counts).toEqual({ train: 4, validation: 2, test: 1 });
    const [batch] = await toArray(ds.batches('validation', { batchSize: 10, training: false, seed: 1, epoch: 0 }));
    expect([...batch!.y.dataSync()]).toEqual([7, 8]);
    dispose(batch!);
    const both = await registries.datasets.get('cifar100').create({ dir: '.', validation_file: 'val.bin', validation_split: 0.1 }, ctx({ configDir: dir })).catch((e: unknown) => e);
    expect((both as Error).message).toContain('data.validation_file: give either validation_file or validation_split, not both');
  });
});

describe('paths', () => {
  it('resolves data.dir relative to the file that wrote it (a base file), else the experiment dir', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const base = join(cache, 'exp', 'base');
    mkdirSync(join(base, 'data'), { recursive: true });
    const record = (i: number) => Buffer.concat([Buffer.from([i % 20, i % 100]), Buffer.alloc(3072, i)]);
    writeFileSync(join(base, 'data', 'train.bin'), Buffer.concat([0, 1, 2].map(record)));
    writeFileSync(join(base, 'data', 'test.bin'), record(3));
    const locate = () => ({ file: join(base, 'cifar100.yaml'), line: 3, col: 8 });
    const ds = await registries.datasets.get('cifar100').create({ dir: 'data', cache_dir: join(cache, 'c2') }, ctx({ configDir: join(cache, 'exp'), locate }));
    expect(ds.info.counts).toEqual({ train: 3, validation: 0, test: 1 });
    const error = await registries.datasets.get('cifar100').create({ dir: 'data' }, ctx({ configDir: join(cache, 'exp') })).catch((e: unknown) => e);
    expect((error as Error).message).toContain(`${join(cache, 'exp', 'data')} does not exist`);
  });
});

describe('errors', () => {
  it('locates a missing data.dir', async () => {
    const locate = (path: readonly (string | number)[]) => ({ file: 'experiments/x.yaml', line: 7, col: 8, path });
    const error = await registries.datasets.get('cifar100').create({ dir: 'nowhere' }, ctx({ locate })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('experiments/x.yaml:7:8 data.dir: expected a directory holding CIFAR-100, got string "nowhere"');
  });

  it('names an unknown transform with a did-you-mean', async () => {
    const error = await registries.datasets.get('synthetic').create({ transforms: [{ type: 'random_flp' }] }, ctx()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/data\.transforms\[0\]\.type: unknown transform type "random_flp" \(did you mean "random_flip"\?\)/);
  });
});

describe.skipIf(!existsSync(realDir))('the real CIFAR-100 pipeline', () => {
  it('splits 45,000/5,000, adapts the reference statistics and serves 64x64 augmented batches', async () => {
    const ds = await registries.datasets.get('cifar100').create(
      {
        dir: realDir,
        validation_split: 0.1,
        cache_dir: join(cache, 'c'),
        transforms: [
          { type: 'normalize' },
          { type: 'resize', height: 64, width: 64 },
          { type: 'random_flip', mode: 'horizontal' },
          { type: 'random_zoom', height_factor: 0.2, width_factor: 0.2 },
        ],
      },
      ctx(),
    );
    expect(ds.info.counts).toEqual({ train: 45000, validation: 5000, test: 10000 });
    expect(ds.numBatches('train', 128)).toBe(352);
    expect(ds.info.inputShape).toEqual([64, 64, 3]);
    expect(ds.info.labelNames?.[0]).toBe('apple');
    const { mean } = ds.state().normalize as { mean: number[] };
    expect(mean.map((m) => Math.round(m * 10) / 10)).toEqual([129.3, 124.1, 112.4]);
    // Adapted once, then cached by data fingerprint: a second dataset reads the same numbers back.
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(cache, 'c', 'state')).filter((f) => f.startsWith('normalize-'))).toHaveLength(1);
    const iterator = ds.batches('train', { batchSize: 128, training: true, seed: 42, epoch: 0 })[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as Batch;
    expect(first.x.shape).toEqual([128, 64, 64, 3]);
    expect(first.y.dtype).toBe('int32');
    await iterator.return!();
    dispose(first);
    // The validation set is the last 5,000 training records, in order.
    const [val] = await toArray(ds.batches('validation', { batchSize: 5000, training: false, seed: 42, epoch: 0 }));
    const { loadCifar, CIFAR100 } = await import('./datasets/cifar.ts');
    const data = await loadCifar(CIFAR100, { dir: realDir, labelMode: 'fine', cacheDir: join(cache, 'c'), download: false, cacheDecoded: true, log: () => {} });
    expect([...val!.y.dataSync()]).toEqual([...data.train.labels.subarray(45000)]);
    expect(channelMoments(data.train).mean).toEqual(mean);
    dispose(val!);
  });
});

async function toArray<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}
