import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, createRegistries, type Dataset, type DatasetContext, type Registries } from '@tessera/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerData } from '../../index.ts';
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
    const error = await failure(registries.datasets.get('image_folder').create({ ...params, dir: join(dir, 'train'), validation_split: 0.2 }, ctx()));
    expect(error.message).toMatch(/a streamed split is not cut by validation_split/);
  });
});
