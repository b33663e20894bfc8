import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, createRegistries, type Dataset, type DatasetContext, type Registries } from '@tessera/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerData } from '../../index.ts';
import { batchesMadeByWorkers } from '../../workers/pool.ts';
import { parseCsvLine } from './scan.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-images-'));
let registries: Registries;
let logs: string[] = [];
const ctx = (over: Partial<DatasetContext> = {}): DatasetContext => ({ configDir: tmp, seed: 7, registries, log: (m) => logs.push(m), ...over });

beforeAll(async () => {
  await tf.setBackend('cpu');
  registries = registerData(createRegistries());
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Class colours: each class's images are one solid colour, so a decoded pixel names its class. */
const COLOURS: Record<string, [number, number, number]> = { cat: [200, 30, 30], dog: [30, 200, 30], fox: [30, 30, 200] };
const solid = (h: number, w: number, rgb: [number, number, number]) => sharp({ create: { height: h, width: w, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });

let dirCount = 0;
async function folder(files: Record<string, Promise<Buffer> | Buffer | string>): Promise<string> {
  const dir = join(tmp, `set${dirCount++}`);
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), await data);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A usual folder: PNG and JPEG, odd sizes, a grayscale dog, an EXIF-rotated fox. */
async function usualFiles(): Promise<Record<string, Promise<Buffer> | Buffer>> {
  return {
    'cat/a.png': solid(10, 13, COLOURS.cat!).png().toBuffer(),
    'cat/b.jpg': solid(40, 30, COLOURS.cat!).jpeg({ quality: 95 }).toBuffer(),
    'cat/nested/c.webp': solid(7, 7, COLOURS.cat!).webp({ lossless: true }).toBuffer(),
    'dog/a.png': solid(16, 16, COLOURS.dog!).png().toBuffer(),
    'dog/gray.png': sharp({ create: { height: 9, width: 9, channels: 3, background: { r: 90, g: 90, b: 90 } } }).grayscale().png().toBuffer(),
    // Stored 16 wide x 8 tall, left half red, right half blue; orientation 6 shows it upright as 8 x 16, red on top.
    'fox/rotated.jpg': sharp(Buffer.from(Array.from({ length: 8 * 16 }, (_, p) => (p % 16 < 8 ? [220, 20, 30] : [25, 40, 210])).flat()), { raw: { height: 8, width: 16, channels: 3 } })
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toBuffer(),
    'fox/b.png': solid(5, 11, COLOURS.fox!).png().toBuffer(),
  };
}

const pixel = (set: { bytes: Uint8Array; height: number; width: number; channels: number; stride: number; offset: number }, image: number, y: number, x: number) => {
  const plane = set.height * set.width;
  return Array.from({ length: set.channels }, (_, c) => set.bytes[set.offset + image * set.stride + c * plane + y * set.width + x]!);
};
const close = (a: number[], b: number[], tol = 8) => a.every((v, i) => Math.abs(v - b[i]!) <= tol);

async function allBatches(ds: Dataset, split: 'train' | 'validation' | 'test', training = false) {
  const xs: number[][] = [];
  const ys: number[] = [];
  for await (const batch of ds.batches(split, { batchSize: 4, training, seed: 1, epoch: 0 })) {
    const [x, y] = [await batch.x.array(), await batch.y.data()];
    (x as number[][][][]).forEach((img) => xs.push([img[0]![0]![0]!, img[0]![0]![1]!, img[0]![0]![2]!]));
    ys.push(...y);
    tf.dispose([batch.x, batch.y]);
  }
  return { xs, ys };
}

async function failure(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

const create = (type: string, params: Record<string, unknown>, over: Partial<DatasetContext> = {}) =>
  registries.datasets.get(type).create({ cache_dir: join(tmp, 'cache'), image_size: [8, 8], ...params }, ctx(over));

describe('image_folder', () => {
  it('reads class folders: sorted classes, PNG/JPEG/WebP, odd sizes, grayscale to RGB, EXIF orientation', async () => {
    const dir = await folder(await usualFiles());
    logs = [];
    const ds = await create('image_folder', { dir, cache: false });
    expect(ds.info.labelNames).toEqual(['cat', 'dog', 'fox']);
    expect(ds.info.numClasses).toBe(3);
    expect(ds.info.inputShape).toEqual([8, 8, 3]);
    expect(ds.info.counts).toEqual({ train: 7, validation: 0, test: 0 });
    expect(ds.info.stats).toEqual({ skipped_images: 0 });
    const { xs, ys } = await allBatches(ds, 'train');
    // Files in class order, sorted paths within: cat/a.png, cat/b.jpg, cat/nested/c.webp, dog/a.png, dog/gray.png, fox/b.png, fox/rotated.jpg.
    expect(ys).toEqual([0, 0, 0, 1, 1, 2, 2]);
    for (const i of [0, 1, 2]) expect(close(xs[i]!, COLOURS.cat!), `cat ${i}: ${xs[i]}`).toBe(true);
    expect(close(xs[3]!, COLOURS.dog!)).toBe(true);
    expect(xs[4]).toEqual([90, 90, 90]);
    expect(close(xs[5]!, COLOURS.fox!)).toBe(true);
    // Upright: red on top (pixel 0,0), blue at the bottom.
    expect(close(xs[6]!, [220, 20, 30], 10), `rotated top-left ${xs[6]}`).toBe(true);
    expect(logs.some((m) => /image_folder: 7 training images in 3 classes/.test(m))).toBe(true);
    // describe: the same shape and classes from the folder names, before any image is read.
    expect(registries.datasets.get('image_folder').describe({ dir, image_size: [8, 8], color_mode: 'grayscale' }, { registries })).toEqual({ inputShape: [8, 8, 1], numClasses: 3 });
    expect(registries.datasets.get('image_folder').describe({ dir, image_size: [8, 8], classes: ['a', 'b'] }, { registries })).toEqual({ inputShape: [8, 8, 3], numClasses: 2 });
  });

  it('skips a corrupt or truncated image with one warning naming it, and records the count', async () => {
    const jpeg = await solid(64, 64, COLOURS.dog!).jpeg().toBuffer();
    const dir = await folder({ ...(await usualFiles()), 'dog/truncated.jpg': jpeg.subarray(0, jpeg.length >> 1), 'cat/zero.png': Buffer.alloc(0) });
    logs = [];
    const ds = await create('image_folder', { dir, cache: false });
    expect(ds.info.counts.train).toBe(7);
    expect(ds.info.stats).toEqual({ skipped_images: 2 });
    const warnings = logs.filter((m) => m.startsWith('warning: skipping'));
    expect(warnings).toHaveLength(2);
    expect(warnings.some((m) => m.includes(join(dir, 'dog/truncated.jpg')))).toBe(true);
    expect(logs.some((m) => /2 unreadable image\(s\) skipped/.test(m))).toBe(true);
    const { ys } = await allBatches(ds, 'train');
    expect(ys).toEqual([0, 0, 0, 1, 1, 2, 2]);
  });

  it('on_bad_image: error stops with a located error naming the file', async () => {
    const dir = await folder({ ...(await usualFiles()), 'fox/bad.png': Buffer.from('not a png at all') });
    const location = { file: join(tmp, 'exp.yaml'), line: 4, col: 8 };
    const error = await failure(create('image_folder', { dir, cache: false, on_bad_image: 'error' }, { locate: (p) => (p.join('.') === 'data.dir' ? location : undefined) }));
    expect(error.message).toContain(join(dir, 'fox/bad.png'));
    expect(error.location).toEqual(location);
    expect(error.hint).toMatch(/on_bad_image: skip/);
  });

  it('uses train/validation/test subfolders when present', async () => {
    const files = await usualFiles();
    const split: Record<string, Promise<Buffer> | Buffer> = {};
    for (const [name, data] of Object.entries(files)) split[`train/${name}`] = data;
    split['validation/dog/v.png'] = solid(8, 8, COLOURS.dog!).png().toBuffer();
    split['validation/cat/v.png'] = solid(8, 8, COLOURS.cat!).png().toBuffer();
    split['test/fox/t.png'] = solid(8, 8, COLOURS.fox!).png().toBuffer();
    const dir = await folder(split);
    const ds = await create('image_folder', { dir, cache: false });
    expect(ds.info.labelNames).toEqual(['cat', 'dog', 'fox']);
    expect(ds.info.counts).toEqual({ train: 7, validation: 2, test: 1 });
    expect((await allBatches(ds, 'validation')).ys).toEqual([0, 1]);
    expect((await allBatches(ds, 'test')).ys).toEqual([2]);
    const error = await failure(create('image_folder', { dir, cache: false, validation_split: 0.2 }));
    expect(error.message).toMatch(/has its own validation images/);
  });

  it('validation_split holds out a seeded random subset (not the last class)', async () => {
    const files: Record<string, Promise<Buffer>> = {};
    for (const c of ['cat', 'dog']) for (let i = 0; i < 10; i++) files[`${c}/${i}.png`] = solid(4, 4, COLOURS[c]!).png().toBuffer();
    const dir = await folder(files);
    const a = await create('image_folder', { dir, cache: false, validation_split: 0.5 });
    expect(a.info.counts).toEqual({ train: 10, validation: 10, test: 0 });
    const labels = (await allBatches(a, 'validation')).ys;
    expect(new Set(labels)).toEqual(new Set([0, 1]));
    const b = await create('image_folder', { dir, cache: false, validation_split: 0.5 });
    expect((await allBatches(b, 'validation')).ys).toEqual(labels);
  });

  it('bad folders are located errors before any decoding', async () => {
    const location = { file: join(tmp, 'exp.yaml'), line: 3, col: 8 };
    const locate = (p: readonly (string | number)[]) => (p.join('.') === 'data.dir' ? location : undefined);
    const png = () => solid(4, 4, COLOURS.cat!).png().toBuffer();
    const cases: [string, Record<string, Promise<Buffer> | Buffer | string>, RegExp][] = [
      ['empty class', { 'cat/a.png': png(), 'dog/.keep': '' }, /class folder .*dog has no images/],
      ['single class', { 'cat/a.png': png(), 'cat/b.png': png() }, /only one class folder .*"cat".*at least 2 classes/],
      ['no classes', { 'a.png': png() }, /file\(s\) directly in/],
      ['unknown extension', { 'cat/a.png': png(), 'dog/b.png': png(), 'dog/notes.txt': 'hello', 'dog/c.tga': 'x' }, /2 file\(s\) with an unknown extension: .*dog\/c\.tga, .*dog\/notes\.txt/],
    ];
    for (const [name, files, message] of cases) {
      const dir = await folder(files);
      const error = await failure(create('image_folder', { dir, cache: false }, { locate }));
      expect(error.message, name).toMatch(message);
      expect(error.location, name).toEqual(location);
      expect(error.path).toEqual(['data', 'dir']);
    }
    // Unknown files can be skipped on request; dotfiles never count.
    const dir = await folder({ 'cat/a.png': png(), 'dog/b.png': png(), 'dog/notes.txt': 'hello', 'dog/.DS_Store': 'x' });
    expect((await create('image_folder', { dir, cache: false, ignore_unknown_files: true })).info.counts.train).toBe(2);
    // A dangling link is unreadable.
    const broken = await folder({ 'cat/a.png': png(), 'dog/b.png': png() });
    symlinkSync(join(broken, 'nowhere.png'), join(broken, 'dog/link.png'));
    expect((await failure(create('image_folder', { dir: broken, cache: false }))).message).toMatch(/unreadable file .*link\.png: a link to a missing file/);
    // A missing dir, a class list that does not match.
    expect((await failure(create('image_folder', { dir: 'no/such/dir' }))).message).toMatch(/data\.dir: expected a directory of class folders, got string "no\/such\/dir" \(.*no\/such\/dir does not exist\)/);
    const ok = await folder({ 'cat/a.png': png(), 'dog/b.png': png() });
    expect((await failure(create('image_folder', { dir: ok, cache: false, classes: ['cat', 'cow'] }))).message).toMatch(/no folder for "cow"; folders not in the list: "dog"/);
    const both = await folder({ 'train/cat/a.png': png(), 'train/dog/b.png': png(), 'validation/cow/c.png': png() });
    expect((await failure(create('image_folder', { dir: both, cache: false }))).message).toMatch(/validation has class folder\(s\) not in the training classes: "cow"/);
  });
});

describe('decoded cache', () => {
  it('decodes once: a second run reads the shards, same pixels; a changed file invalidates it', async () => {
    const dir = await folder(await usualFiles());
    const cacheDir = join(tmp, 'cache-a');
    logs = [];
    const first = await create('image_folder', { dir, cache_dir: cacheDir });
    expect(logs.some((m) => m.includes('(decoded cache)'))).toBe(false);
    const entries = readdirSync(join(cacheDir, 'images'));
    expect(entries).toHaveLength(1);
    expect(readdirSync(join(cacheDir, 'images', entries[0]!)).sort()).toEqual(['index.json', 'labels.u16', 'shard-00000.u8']);
    logs = [];
    const second = await create('image_folder', { dir, cache_dir: cacheDir });
    expect(logs.some((m) => m.includes('(decoded cache)'))).toBe(true);
    expect(second.info.fingerprint).toBe(first.info.fingerprint);
    expect(await allBatches(second, 'train')).toEqual(await allBatches(first, 'train'));
    // Another image size is another entry.
    await create('image_folder', { dir, cache_dir: cacheDir, image_size: [4, 4] });
    expect(readdirSync(join(cacheDir, 'images'))).toHaveLength(2);
    // An edited file (new mtime and content) means a new digest: decoded again.
    writeFileSync(join(dir, 'dog/a.png'), await solid(16, 16, COLOURS.fox!).png().toBuffer());
    utimesSync(join(dir, 'dog/a.png'), new Date(), new Date(Date.now() + 5000));
    logs = [];
    const third = await create('image_folder', { dir, cache_dir: cacheDir });
    expect(logs.some((m) => m.includes('(decoded cache)'))).toBe(false);
    expect(third.info.fingerprint).not.toBe(first.info.fingerprint);
    expect(close((await allBatches(third, 'train')).xs[3]!, COLOURS.fox!)).toBe(true);
  });

  it('never uses what a killed writer left: a .tmp- folder is ignored and cleaned, an entry without index.json is redone', async () => {
    const dir = await folder(await usualFiles());
    const cacheDir = join(tmp, 'cache-b');
    await create('image_folder', { dir, cache_dir: cacheDir });
    const [digest] = readdirSync(join(cacheDir, 'images'));
    const entry = join(cacheDir, 'images', digest!);
    // A writer killed mid-way (pid 2^22 + 1 is above Linux' pid_max default, so not alive).
    const stale = join(cacheDir, 'images', `${digest}.tmp-4194305-abcdef`);
    mkdirSync(stale);
    writeFileSync(join(stale, 'shard-00000.u8'), Buffer.alloc(10));
    // A damaged entry: a truncated shard.
    writeFileSync(join(entry, 'shard-00000.u8'), Buffer.alloc(5));
    logs = [];
    const ds = await create('image_folder', { dir, cache_dir: cacheDir });
    expect(logs.some((m) => /ignoring a damaged cache entry/.test(m))).toBe(true);
    expect(close((await allBatches(ds, 'train')).xs[0]!, COLOURS.cat!)).toBe(true);
    expect(existsSync(stale)).toBe(false);
    expect(readdirSync(entry).sort()).toEqual(['index.json', 'labels.u16', 'shard-00000.u8']);
    // An entry folder with shards but no index.json (not renamed by this code, but be safe) is decoded again.
    rmSync(join(entry, 'index.json'));
    logs = [];
    await create('image_folder', { dir, cache_dir: cacheDir });
    expect(logs.some((m) => m.includes('(decoded cache)'))).toBe(false);
  });
});

describe('decode progress', () => {
  it('reports every image decoded, then a final call, whatever the concurrency', async () => {
    const { decodeFileList } = await import('./cache.ts');
    const dir = await folder(await usualFiles());
    const scanned = (await import('./scan.ts')).scanImageFolder(dir, { path: ['data', 'dir'] });
    const calls: [number, number, boolean][] = [];
    const settings = { height: 4, width: 4, channels: 3 as const, fit: 'fill' as const, interpolation: 'bilinear' as const };
    await decodeFileList(scanned.train, settings, { onBadImage: 'skip', concurrency: 3, log: () => {}, progress: (d, t, f) => calls.push([d, t, f]), name: 'train' });
    expect(calls.map(([d]) => d)).toEqual([1, 2, 3, 4, 5, 6, 7, 7]);
    expect(calls.at(-1)).toEqual([7, 7, true]);
    expect(calls.slice(0, -1).every(([, t, f]) => t === 7 && !f)).toBe(true);
  });
});

describe('first pass on decode workers', () => {
  it('writes the same shard bytes, labels and skipped list on 1 thread or 3 decode workers, in memory or streamed', async () => {
    const { decodeFileList } = await import('./cache.ts');
    const files: Record<string, Promise<Buffer> | Buffer> = {};
    const bad: string[] = [];
    // 150 images: CIFAR-like PNGs already at size (the in-thread path), others resized by sharp, and bad ones.
    for (let i = 0; i < 150; i++) {
      const name = `${['a', 'b', 'c'][i % 3]}/${String(i).padStart(3, '0')}`;
      const f = (y: number, x: number, c: number) => (i * 37 + y * 11 + x * 5 + c * 71) % 256;
      const hwc = Buffer.from(Array.from({ length: 8 * 8 * 3 }, (_, k) => f(Math.floor(k / 24), Math.floor(k / 3) % 8, k % 3)));
      if (i % 29 === 7) {
        files[`${name}.png`] = Buffer.from('not an image');
        bad.push(`${name}.png`);
      }
      else if (i % 10 === 3) files[`${name}.jpg`] = solid(12, 9, [i, 255 - i, 80]).jpeg().toBuffer();
      else files[`${name}.png`] = sharp(hwc, { raw: { height: 8, width: 8, channels: 3 } }).png({ adaptiveFiltering: i % 2 === 0 }).toBuffer();
    }
    const dir = await folder(files);
    const names = Object.keys(files).sort();
    const list = { files: names.map((f) => join(dir, f)), labels: names.map((f) => 'abc'.indexOf(f[0]!)) };
    const settings = { height: 8, width: 8, channels: 3 as const, fit: 'fill' as const, interpolation: 'bilinear' as const };
    const entry = async (threads: number, inMemory: boolean) => {
      const cacheDir = join(tmp, `cache-threads-${threads}-${inMemory}`);
      const warnings: string[] = [];
      // 40 images (7,680 bytes) per shard: 4 shards, the skipped images spread over them.
      const decoded = await decodeFileList(list, settings, { cacheDir, inMemory, threads, shardBytes: 40 * 192, onBadImage: 'skip', log: (m) => warnings.push(m), progress: () => {}, name: 'train' });
      const entryDir = join(cacheDir, 'images', decoded.digest);
      const shards = decoded.shards!.shards.map((s) => readFileSync(join(entryDir, s.file)));
      return { decoded, shards, labels: readFileSync(join(entryDir, 'labels.u16')), index: readFileSync(join(entryDir, 'index.json'), 'utf8'), warnings };
    };
    const one = await entry(1, true);
    expect(one.decoded.count).toBe(145);
    expect(one.decoded.skipped.map((s) => s.file.slice(dir.length + 1))).toEqual(bad.sort());
    expect(one.warnings.length).toBe(5);
    // The first image (a/000.png, i = 0) is the source's pixels, planar.
    const first = Array.from({ length: 3 * 64 }, (_, k) => (Math.floor(k % 64 / 8) * 11 + (k % 8) * 5 + Math.floor(k / 64) * 71) % 256);
    expect([...one.decoded.set!.bytes.subarray(0, 192)]).toEqual(first);
    for (const [threads, inMemory] of [[3, true], [3, false], [1, false]] as const) {
      const other = await entry(threads, inMemory);
      const what = `${threads} thread(s), ${inMemory ? 'in memory' : 'streamed'}`;
      expect(other.shards.length, what).toBe(4);
      other.shards.forEach((shard, k) => expect(shard.equals(one.shards[k]!), `${what}: shard ${k}`).toBe(true));
      expect(other.labels.equals(one.labels), what).toBe(true);
      expect(other.index, what).toBe(one.index);
      expect(other.warnings, what).toEqual(one.warnings);
      if (inMemory) expect(Buffer.from(other.decoded.set!.bytes).equals(Buffer.from(one.decoded.set!.bytes)), what).toBe(true);
    }
    // The in-memory set is the shards end to end.
    expect(Buffer.concat(one.shards).equals(Buffer.from(one.decoded.set!.bytes))).toBe(true);
    // on_bad_image: error names the first bad file in list order, whichever thread met it first.
    const stop = decodeFileList(list, settings, { cacheDir: join(tmp, 'cache-threads-error'), threads: 3, onBadImage: 'error', log: () => {}, progress: () => {}, name: 'train' });
    await expect(stop).rejects.toThrow(`${join(dir, bad[0]!)}: `);
    expect(existsSync(join(tmp, 'cache-threads-error', 'images')) ? readdirSync(join(tmp, 'cache-threads-error', 'images')) : []).toEqual([]);
  });
});

describe('manifest', () => {
  it('reads CSV with a header (names, a split column, quoted paths) and JSONL with integer labels', async () => {
    const dir = await folder({
      'img/a.png': solid(6, 6, COLOURS.cat!).png().toBuffer(),
      'img/b, with comma.png': solid(6, 6, COLOURS.dog!).png().toBuffer(),
      'img/c.jpg': solid(6, 6, COLOURS.fox!).jpeg().toBuffer(),
      'img/d.png': solid(6, 6, COLOURS.dog!).png().toBuffer(),
    });
    writeFileSync(join(dir, 'list.csv'), 'filename,label,split\nimg/a.png,cat,train\n"img/b, with comma.png",dog,train\nimg/c.jpg,fox,train\n# a comment\nimg/d.png,dog,validation\n');
    const ds = await create('manifest', { manifest: join(dir, 'list.csv'), cache: false });
    expect(ds.info.labelNames).toEqual(['cat', 'dog', 'fox']);
    expect(ds.info.counts).toEqual({ train: 3, validation: 1, test: 0 });
    expect(registries.datasets.get('manifest').describe({ manifest: 'list.csv', image_size: [8, 8] }, { registries, configDir: dir })).toEqual({ inputShape: [8, 8, 3], numClasses: 3 });
    expect((await allBatches(ds, 'train')).ys).toEqual([0, 1, 2]);
    writeFileSync(join(dir, 'list.jsonl'), '{"path": "img/a.png", "label": 0}\n{"path": "img/c.jpg", "label": 2}\n{"path": "img/d.png", "label": 1}\n');
    const json = await create('manifest', { manifest: join(dir, 'list.jsonl'), cache: false });
    expect(json.info.labelNames).toEqual(['0', '1', '2']);
    const { xs, ys } = await allBatches(json, 'train');
    expect(ys).toEqual([0, 2, 1]);
    expect(close(xs[1]!, COLOURS.fox!)).toBe(true);
    // Header-less rows are path,label.
    writeFileSync(join(dir, 'plain.csv'), 'img/a.png,cat\nimg/d.png,dog\n');
    expect((await create('manifest', { manifest: join(dir, 'plain.csv'), cache: false })).info.counts.train).toBe(2);
  });

  it('a row pointing at a missing file or naming an unknown label is an error at file:line', async () => {
    const dir = await folder({ 'a.png': solid(6, 6, COLOURS.cat!).png().toBuffer(), 'b.png': solid(6, 6, COLOURS.dog!).png().toBuffer() });
    const manifest = join(dir, 'm.csv');
    writeFileSync(manifest, 'path,label\na.png,cat\nb.png,dog\nmissing.png,dog\n');
    let error = await failure(create('manifest', { manifest, cache: false }));
    expect(error.location).toEqual({ file: manifest, line: 4, col: 1 });
    expect(error.message).toMatch(/m\.csv:4: missing\.png does not exist/);
    writeFileSync(manifest, 'path,label\na.png,cat\nb.png,cow\n');
    error = await failure(create('manifest', { manifest, cache: false, classes: ['cat', 'dog'] }));
    expect(error.location).toEqual({ file: manifest, line: 3, col: 1 });
    expect(error.message).toMatch(/label "cow" is not one of the 2 classes \(cat, dog\)/);
    writeFileSync(manifest, 'path,label\na.png,cat\nb.png,3\n');
    expect((await failure(create('manifest', { manifest, cache: false }))).message).toMatch(/mixes names and integers/);
    writeFileSync(manifest, 'path,label\na.png,cat\nb.png,cat\n');
    expect((await failure(create('manifest', { manifest, cache: false }))).message).toMatch(/only one class/);
    writeFileSync(manifest, 'path,label\na.png,cat\nnotes.txt,dog\n');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    expect((await failure(create('manifest', { manifest, cache: false }))).message).toMatch(/unknown extension: notes\.txt \(line 3\)/);
  });

  it('parses CSV fields with quotes and escaped quotes', () => {
    expect(parseCsvLine('a,"b,c","say ""hi""", d ')).toEqual(['a', 'b,c', 'say "hi"', 'd']);
  });
});

describe('streaming from the shards (larger than memory)', () => {
  it('decodes shard by shard, then streams an epoch through a seeded shuffle buffer, one shard at a time', async () => {
    const { decodeFileList } = await import('./cache.ts');
    const { ShardReader } = await import('./stream.ts');
    const { Rng } = await import('@tessera/core/random');
    const files: Record<string, Promise<Buffer>> = {};
    // 40 images whose red value is 5 x their number: pixels name the image.
    for (let i = 0; i < 40; i++) files[`${i < 20 ? 'a' : 'b'}/${String(i).padStart(2, '0')}.png`] = solid(4, 4, [i * 5, 0, 0]).png().toBuffer();
    const dir = await folder(files);
    const names = Object.keys(files).sort();
    const list = { files: names.map((f) => join(dir, f)), labels: names.map((f) => (f.startsWith('a') ? 0 : 1)) };
    const settings = { height: 4, width: 4, channels: 3 as const, fit: 'fill' as const, interpolation: 'bilinear' as const };
    const cacheDir = join(tmp, 'cache-stream');
    // 5 images (240 bytes) per shard: 8 shards.
    const streamed = await decodeFileList(list, settings, { cacheDir, inMemory: false, shardBytes: 5 * 48, onBadImage: 'skip', log: () => {}, name: 'train' });
    expect(streamed.set).toBeUndefined();
    expect(streamed.shards!.shards.map((s) => s.count)).toEqual([5, 5, 5, 5, 5, 5, 5, 5]);
    const reader = new ShardReader(streamed.shards!);
    /** One epoch's image numbers (from the red channel), checking each label on the way. */
    const epoch = (shuffle?: { rng: InstanceType<typeof Rng>; buffer: number }) => {
      const stream = reader.openEpoch(shuffle);
      const seen: number[] = [];
      for (let batch = stream.take(6); batch.count > 0; batch = stream.take(6)) {
        for (let b = 0; b < batch.count; b++) {
          const image = batch.bytes[b * batch.stride]! / 5;
          expect(batch.labels[b]).toBe(image < 20 ? 0 : 1);
          seen.push(image);
        }
      }
      return seen;
    };
    const ordered = epoch();
    expect(ordered).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(reader.reads).toBe(8);
    const shuffled = epoch({ rng: new Rng(1), buffer: 8 });
    expect([...shuffled].sort((a, b) => a - b)).toEqual(ordered);
    expect(shuffled).not.toEqual(ordered);
    // Each shard is read once per epoch: one resident at a time.
    expect(reader.reads).toBe(16);
    expect(epoch({ rng: new Rng(1), buffer: 8 })).toEqual(shuffled);
    expect(epoch({ rng: new Rng(2), buffer: 8 })).not.toEqual(shuffled);
    // Held-out images (0..9 fill shards 0 and 1, and 17) are skipped; shards 0 and 1 are not read.
    const skip = new Uint8Array(40);
    for (const i of [...Array.from({ length: 10 }, (_, i) => i), 17]) skip[i] = 1;
    const readsBefore = reader.reads;
    const rest = reader.openEpoch(undefined, skip).take(40);
    expect(Array.from({ length: rest.count }, (_, b) => rest.bytes[b * rest.stride]! / 5)).toEqual(ordered.filter((i) => !skip[i]));
    expect(reader.reads - readsBefore).toBe(6);
    // Chosen images in a given order, across shards, read where they lie: pixels and labels.
    const subset = reader.openSubset(Int32Array.from([37, 3, 12, 4, 25, 39, 0]));
    const firstTake = subset.take(4);
    const secondTake = subset.take(4);
    expect(firstTake.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect([firstTake, secondTake].flatMap((t) => Array.from({ length: t.count }, (_, b) => t.bytes[b * t.stride]! / 5))).toEqual([37, 3, 12, 4, 25, 39, 0]);
    expect([...firstTake.labels, ...secondTake.labels]).toEqual([1, 0, 0, 0, 1, 1, 0]);
    expect(subset.take(4).count).toBe(0);
    // chunks(): every image, one shard at a time, in order.
    const chunks = [...reader.chunks()];
    expect(chunks.map((c) => c.count)).toEqual([5, 5, 5, 5, 5, 5, 5, 5]);
    expect(Buffer.concat(chunks.map((c) => c.bytes)).equals(Buffer.concat(readdirSync(join(cacheDir, 'images', streamed.digest)).filter((f) => f.endsWith('.u8')).sort().map((f) => readFileSync(join(cacheDir, 'images', streamed.digest, f)))))).toBe(true);
    expect(chunks.flatMap((c) => [...c.labels])).toEqual(list.labels);
    // Moments accumulated over the 8 chunks are those of the images at once, bit for bit.
    const { channelMoments } = await import('../../store.ts');
    const inMemory = await decodeFileList(list, settings, { onBadImage: 'skip', log: () => {}, name: 'train' });
    const moments = channelMoments(reader.chunks());
    expect(moments).toEqual(channelMoments(inMemory.set!));
    // Red is 5 x the image number: mean 97.5, variance 25 x (40^2 - 1) / 12.
    expect(moments.mean[0]).toBeCloseTo(97.5, 12);
    expect(moments.variance[0]).toBeCloseTo((25 * (40 * 40 - 1)) / 12, 10);
    // The next run finds the entry and streams it without reading the pixels.
    const again = await decodeFileList(list, settings, { cacheDir, inMemory: false, onBadImage: 'skip', log: () => {}, name: 'train' });
    expect(again.fromCache).toBe(true);
    expect(again.set).toBeUndefined();
    expect(again.count).toBe(40);
  });

  it('image_folder streams a split larger than max_memory_mb: every image once per epoch, the same batches for 0 or 2 workers', async () => {
    const files: Record<string, Promise<Buffer>> = {};
    for (const c of ['cat', 'dog', 'fox']) for (let i = 0; i < 7; i++) files[`train/${c}/${i}.png`] = solid(4, 4, COLOURS[c]!).png().toBuffer();
    files['validation/cat/v.png'] = solid(4, 4, COLOURS.cat!).png().toBuffer();
    files['validation/dog/v.png'] = solid(4, 4, COLOURS.dog!).png().toBuffer();
    const dir = await folder(files);
    logs = [];
    const params = { dir, image_size: [4, 4], cache_dir: join(tmp, 'cache-stream-2'), max_memory_mb: 0.0001, shuffle_buffer: 5, transforms: [{ type: 'normalize' }, { type: 'random_flip' }] };
    const inline = await registries.datasets.get('image_folder').create({ ...params, workers: 0 }, ctx());
    expect(logs.some((m) => /train: 21 images streamed from 1 shard\(s\) .*a shuffle buffer of 5 images \+ one shard/.test(m))).toBe(true);
    expect(inline.info.counts).toEqual({ train: 21, validation: 2, test: 0 });
    const a = await allBatches(inline, 'train', true);
    expect(a.ys.sort()).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2]);
    const pooled = await registries.datasets.get('image_folder').create({ ...params, workers: 2 }, ctx());
    const first = await allBatches(inline, 'train', true);
    expect(await allBatches(pooled, 'train', true)).toEqual(first);
    expect((await allBatches(pooled, 'validation')).ys).toEqual([0, 1]);
  });

  /** 36 images (3 classes x 12) whose red value is 5 x their number in file order: pixels name the image. */
  async function numberedFolder(): Promise<string> {
    const files: Record<string, Promise<Buffer>> = {};
    ['cat', 'dog', 'fox'].forEach((c, k) => {
      for (let i = 0; i < 12; i++) files[`${c}/${String(i).padStart(2, '0')}.png`] = solid(4, 4, [(k * 12 + i) * 5, 40, 90]).png().toBuffer();
    });
    return folder(files);
  }
  const numbers = (xs: number[][]) => xs.map((x) => x[0]! / 5);

  it('validation_split on a streamed split holds out the same images, in the same order, as in memory; training streams the rest', async () => {
    const dir = await numberedFolder();
    const base = { dir, image_size: [4, 4], validation_split: 0.25, workers: 0 };
    const heldBySeed: number[][] = [];
    for (const seed of [7, 8]) {
      const inMemory = await registries.datasets.get('image_folder').create({ ...base, cache_dir: join(tmp, `cache-split-mem-${seed}`) }, ctx({ seed }));
      logs = [];
      const streamed = await registries.datasets.get('image_folder').create({ ...base, cache_dir: join(tmp, `cache-split-stream-${seed}`), max_memory_mb: 0.0001, shuffle_buffer: 4 }, ctx({ seed }));
      expect(logs.some((m) => /train: 27 of the 36 images streamed from 1 shard\(s\) .*; the 9 held out for validation are read one batch at a time/.test(m)), logs.join('\n')).toBe(true);
      expect(streamed.info.counts).toEqual({ train: 27, validation: 9, test: 0 });
      expect(inMemory.info.counts).toEqual(streamed.info.counts);
      // Keras' int(36 * 0.75) = 27 trained on; the held-out 9 are a seeded random choice, not the last class.
      const held = await allBatches(inMemory, 'validation');
      const heldNumbers = numbers(held.xs);
      expect(await allBatches(streamed, 'validation')).toEqual(held);
      expect(new Set(held.ys).size).toBeGreaterThan(1);
      expect(held.ys).toEqual(heldNumbers.map((i) => Math.floor(i / 12)));
      // Training: every other image once per epoch, whether streamed (shuffle buffer) or in memory.
      const rest = Array.from({ length: 36 }, (_, i) => i).filter((i) => !heldNumbers.includes(i));
      for (const epoch of [0, 1]) {
        const trained = [];
        for await (const batch of streamed.batches('train', { batchSize: 5, training: true, seed, epoch })) {
          trained.push(...((await batch.x.array()) as number[][][][]).map((img) => img[0]![0]![0]! / 5));
          tf.dispose([batch.x, batch.y]);
        }
        expect(trained.sort((a, b) => a - b)).toEqual(rest);
      }
      expect(numbers((await allBatches(inMemory, 'train')).xs).sort((a, b) => a - b)).toEqual(rest);
      heldBySeed.push(heldNumbers);
    }
    // Another seed holds out other images.
    expect(heldBySeed[1]).not.toEqual(heldBySeed[0]);
    // Batch workers read the held-out images from shared memory: the same validation batches.
    const pooled = await registries.datasets.get('image_folder').create({ ...base, workers: 2, cache_dir: join(tmp, 'cache-split-stream-7'), max_memory_mb: 0.0001 }, ctx());
    const madeBefore = batchesMadeByWorkers().reduce((a, b) => a + b, 0);
    expect(numbers((await allBatches(pooled, 'validation')).xs)).toEqual(heldBySeed[0]);
    expect(batchesMadeByWorkers().reduce((a, b) => a + b, 0) - madeBefore, 'validation batches made by the workers').toBeGreaterThan(0);
    // validation_shuffle: false holds out the last images (the last class), streamed too.
    const last = await registries.datasets.get('image_folder').create({ ...base, cache_dir: join(tmp, 'cache-split-stream-7'), max_memory_mb: 0.0001, validation_shuffle: false }, ctx());
    expect(numbers((await allBatches(last, 'validation')).xs)).toEqual([27, 28, 29, 30, 31, 32, 33, 34, 35]);
  });
  it('normalize learns from every streamed training image: the in-memory statistics exactly, a naive float64 computation to 1e-12', async () => {
    // 3 classes x 9 images of 5x6 pixels, all different: image k's pixel (y, x, c) is f(k, y, x, c).
    const f = (k: number, y: number, x: number, c: number) => (k * 53 + y * 29 + x * 7 + c * 101 + ((k * y * x) % 13) * 11) % 256;
    const files: Record<string, Promise<Buffer>> = {};
    for (let k = 0; k < 27; k++) {
      const hwc = Buffer.from(Array.from({ length: 5 * 6 * 3 }, (_, p) => f(k, Math.floor(p / 18), Math.floor(p / 3) % 6, p % 3)));
      files[`${['a', 'b', 'c'][k % 3]}/${String(k).padStart(2, '0')}.png`] = sharp(hwc, { raw: { height: 5, width: 6, channels: 3 } }).png().toBuffer();
    }
    const dir = await folder(files);
    const base = { dir, image_size: [5, 6], validation_split: 0.2, workers: 0, transforms: [{ type: 'normalize' }] };
    const inMemory = await registries.datasets.get('image_folder').create({ ...base, cache_dir: join(tmp, 'cache-norm-mem') }, ctx());
    logs = [];
    const streamedParams = { ...base, cache_dir: join(tmp, 'cache-norm-stream'), max_memory_mb: 0.0001 };
    const streamed = await registries.datasets.get('image_folder').create(streamedParams, ctx());
    expect(logs).toContain('normalize: learning from all 27 training images, one pass over the streamed shards');
    const state = streamed.state().normalize as { mean: number[]; variance: number[] };
    expect(state).toEqual(inMemory.state().normalize);
    // Naive: two passes in float64 over every source pixel (the held-out ones too, as Keras' adapt(x_train) before fit's validation_split).
    for (let c = 0; c < 3; c++) {
      const values = Array.from({ length: 27 * 30 }, (_, p) => f(Math.floor(p / 30), Math.floor((p % 30) / 6), p % 6, c));
      const mean = values.reduce((a, v) => a + v, 0) / values.length;
      const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
      expect(Math.abs(state.mean[c]! - mean)).toBeLessThan(1e-12 * mean);
      expect(Math.abs(state.variance[c]! - variance)).toBeLessThan(1e-12 * variance);
    }
    // The batches are normalized with them: a validation image's first pixel, by hand.
    const batch = (await allBatches(streamed, 'validation')).xs[0]!;
    const std = state.variance.map(Math.sqrt);
    const firstHeld = (await allBatches(await registries.datasets.get('image_folder').create({ ...base, transforms: [], cache_dir: join(tmp, 'cache-norm-mem') }, ctx()), 'validation')).xs[0]!;
    batch.forEach((v, c) => expect(v).toBeCloseTo((firstHeld[c]! - state.mean[c]!) / std[c]!, 5));
    // Cached with the transform state: the next run reads it, no second pass.
    logs = [];
    const again = await registries.datasets.get('image_folder').create(streamedParams, ctx());
    expect(logs.some((m) => m.startsWith('normalize: learning'))).toBe(false);
    expect(again.state()).toEqual(streamed.state());
  });

  it('an adaptive transform that cannot learn from a stream is a located error before decoding', async () => {
    const own = registerData(createRegistries());
    own.transforms.register({
      type: 'my_stats',
      description: 'a user transform that adapts on images in memory only',
      params: { properties: {}, additionalProperties: false },
      create: () => ({ random: false, outputShape: (s: number[]) => s, apply: (x: tf.Tensor4D) => x, adapt: () => ({}) }),
    });
    const dir = await numberedFolder();
    const location = { file: join(tmp, 'exp.yaml'), line: 9, col: 15 };
    const cacheDir = join(tmp, 'cache-own');
    const error = await failure(own.datasets.get('image_folder').create(
      { dir, image_size: [4, 4], cache_dir: cacheDir, max_memory_mb: 0.0001, transforms: [{ type: 'normalize' }, { type: 'my_stats' }] },
      ctx({ registries: own, locate: (p) => (p.join('.') === 'data.transforms.1.type' ? location : undefined) }),
    ));
    expect(error.message).toMatch(/my_stats learns from the training images, which are streamed here .*\(it has no adaptChunks\(\)\)/);
    expect(error.location).toEqual(location);
    expect(existsSync(cacheDir)).toBe(false);
  });
});
