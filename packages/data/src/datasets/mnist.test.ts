import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { createRegistries } from '@tessera/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerData } from '../index.ts';
import { FASHION_MNIST, MNIST, loadIdx, type IdxFormat } from './mnist.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-mnist-'));
const logs: string[] = [];
const log = (m: string) => logs.push(m);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(() => tf.setBackend('cpu'));

/** An IDX file of unsigned bytes, written by hand from the format's description (magic 0x0000080N, big-endian dims). */
function idx(dims: number[], data: (i: number) => number): Buffer {
  const size = dims.reduce((a, b) => a * b, 1);
  const out = Buffer.alloc(4 + 4 * dims.length + size);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => out.writeUInt32BE(d, 4 + 4 * i));
  for (let i = 0; i < size; i++) out[4 + 4 * dims.length + i] = data(i);
  return out;
}
/** n 28x28 images whose pixel p of image i is (i * 3 + p) % 256, labels i % 10. */
const images = (n: number) => idx([n, 28, 28], (k) => (Math.floor(k / 784) * 3 + (k % 784)) % 256);
const labels = (n: number) => idx([n], (i) => i % 10);
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

let dirs = 0;
function dirWith(files: Record<string, Buffer>): string {
  const dir = join(tmp, `d${dirs++}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}
const official = (n: number, m: number, gz: boolean) => {
  const z = (b: Buffer) => (gz ? gzipSync(b) : b);
  const s = gz ? '.gz' : '';
  return {
    [`train-images-idx3-ubyte${s}`]: z(images(n)),
    [`train-labels-idx1-ubyte${s}`]: z(labels(n)),
    [`t10k-images-idx3-ubyte${s}`]: z(images(m)),
    [`t10k-labels-idx1-ubyte${s}`]: z(labels(m)),
  };
};

describe('MNIST IDX files', () => {
  it('reads gzipped and plain IDX files in place: counts, labels, pixels', async () => {
    for (const gz of [true, false]) {
      const data = await loadIdx(MNIST, { dir: dirWith(official(12, 5, gz)), cacheDir: join(tmp, 'c'), download: false, log });
      expect([data.train.count, data.test.count]).toEqual([12, 5]);
      expect([data.train.height, data.train.width, data.train.channels]).toEqual([28, 28, 1]);
      expect([...data.train.labels]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      // Image 4, pixel 100: (4*3 + 100) % 256.
      expect(data.train.bytes[data.train.offset + 4 * data.train.stride + 100]).toBe(112);
    }
  });

  it('the mnist entry serves 28x28x1 batches with the class names', async () => {
    const registries = registerData(createRegistries());
    const dir = dirWith(official(20, 6, true));
    const ds = await registries.datasets.get('fashion_mnist').create({ dir, validation_split: 0.25 }, { configDir: tmp, seed: 1, registries, log });
    expect(ds.info.inputShape).toEqual([28, 28, 1]);
    expect(ds.info.counts).toEqual({ train: 15, validation: 5, test: 6 });
    expect(ds.info.labelNames?.[9]).toBe('Ankle boot');
    const batches = [];
    for await (const b of ds.batches('test', { batchSize: 4, training: false, seed: 1, epoch: 0 })) batches.push(b);
    expect(batches.map((b) => b.x.shape)).toEqual([[4, 28, 28, 1], [2, 28, 28, 1]]);
    expect([...(await batches[1]!.y.data())]).toEqual([4, 5]);
    expect((await batches[0]!.x.data())[28 * 5 + 3]).toBe((0 * 3 + 28 * 5 + 3) % 256);
    batches.forEach((b) => tf.dispose([b.x, b.y]));
  });

  it('rejects truncated or foreign files with the file named', async () => {
    const files = official(4, 2, false);
    files['train-images-idx3-ubyte'] = files['train-images-idx3-ubyte']!.subarray(0, 500);
    await expect(loadIdx(MNIST, { dir: dirWith(files), cacheDir: join(tmp, 'c'), download: false, log })).rejects.toThrow(/train-images-idx3-ubyte: IDX file has 484 data bytes, its header says 4x28x28 = 3136: truncated/);
    const wrong = official(4, 3, false);
    wrong['t10k-labels-idx1-ubyte'] = labels(2);
    await expect(loadIdx(MNIST, { dir: dirWith(wrong), cacheDir: join(tmp, 'c'), download: false, log })).rejects.toThrow(/t10k-labels-idx1-ubyte: 2 labels for 3 images/);
    const text = official(4, 2, false);
    text['train-labels-idx1-ubyte'] = Buffer.from('hello world');
    await expect(loadIdx(MNIST, { dir: dirWith(text), cacheDir: join(tmp, 'c'), download: false, log })).rejects.toThrow(/not an IDX file/);
  });

  it('offline with nothing local: says which files to put where', async () => {
    await expect(loadIdx(FASHION_MNIST, { cacheDir: join(tmp, 'empty-cache'), download: false, log })).rejects.toThrow(
      /Fashion-MNIST not found \(train-images-idx3-ubyte\.gz, .* missing\); put .* into a directory named by data\.dir or TESSERA_DATA_DIR, or into .*empty-cache\/fashion_mnist/,
    );
  });

  describe('download', () => {
    let server: Server;
    let base = '';
    let requests = 0;
    const served = official(10, 4, true);
    beforeAll(async () => {
      server = createServer((req, res) => {
        requests++;
        const body = served[req.url!.slice(1)];
        if (!body) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-length': body.length }).end(body);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    const format = (): IdxFormat => ({
      ...MNIST,
      url: '',
      trainImages: { file: 'train-images-idx3-ubyte.gz', md5: md5(served['train-images-idx3-ubyte.gz']!) },
      trainLabels: { file: 'train-labels-idx1-ubyte.gz', md5: md5(served['train-labels-idx1-ubyte.gz']!) },
      testImages: { file: 't10k-images-idx3-ubyte.gz', md5: md5(served['t10k-images-idx3-ubyte.gz']!) },
      testLabels: { file: 't10k-labels-idx1-ubyte.gz', md5: md5(served['t10k-labels-idx1-ubyte.gz']!) },
    });

    it('downloads the four files once into the cache, md5-checked; the next load reads the cache', async () => {
      const cacheDir = join(tmp, 'dl-cache');
      const first = await loadIdx(format(), { cacheDir, download: true, url: base, log });
      expect(first.train.count).toBe(10);
      expect(requests).toBe(4);
      expect(existsSync(join(cacheDir, 'mnist', 'train-images-idx3-ubyte.gz'))).toBe(true);
      const second = await loadIdx(format(), { cacheDir, download: true, url: base, log });
      expect(requests).toBe(4);
      expect(second.fingerprint).toBe(first.fingerprint);
      // A damaged cached file is caught by its md5.
      writeFileSync(join(cacheDir, 'mnist', 't10k-labels-idx1-ubyte.gz'), gzipSync(labels(4)).subarray(0, 20));
      await expect(loadIdx(format(), { cacheDir, download: true, url: base, log })).rejects.toThrow(/t10k-labels-idx1-ubyte\.gz: md5 is [0-9a-f]{32}, expected/);
    });

    it('a wrong checksum from the server fails the download and keeps nothing', async () => {
      const cacheDir = join(tmp, 'dl-bad');
      const bad = { ...format(), trainLabels: { file: 'train-labels-idx1-ubyte.gz', md5: '0'.repeat(32) } };
      await expect(loadIdx(bad, { cacheDir, download: true, url: base, log })).rejects.toThrow(/download failed.*md5/);
      expect(existsSync(join(cacheDir, 'mnist', 'train-labels-idx1-ubyte.gz'))).toBe(false);
    });
  });

  it('the real MNIST files, when present in shared/data/mnist', async (context) => {
    const real = fileURLToPath(new URL('../../../../../shared/data/mnist', import.meta.url));
    if (!existsSync(real)) return context.skip(`no real MNIST at ${real} (the shared data holds CIFAR-100 only)`);
    const data = await loadIdx(MNIST, { dir: real, cacheDir: join(tmp, 'c'), download: false, log });
    expect([data.train.count, data.test.count]).toEqual([60000, 10000]);
    expect([...data.train.labels.subarray(0, 10)]).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  });
});
