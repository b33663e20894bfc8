import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadExperiment } from '../config/load.ts';
import { fingerprint } from '../random/fingerprint.ts';
import { classReport, confusionMatrix, mostConfused } from './evaluate.ts';
import { expandInputs, readInputBatches, readInputs, readRecords } from './inputs.ts';
import { checkModelMetadata, configDigest } from './metadata.ts';
import { softmaxRows } from './predictor.ts';

describe('evaluation numbers (golden values counted by hand)', () => {
  // 10 examples of 3 classes; true -> predicted:
  //   cat: cat cat cat dog      (4: 3 right, 1 as dog)
  //   dog: dog dog cat eel eel  (5: 2 right, 1 as cat, 2 as eel)
  //   eel: eel                  (1: 1 right)
  const classes = ['cat', 'dog', 'eel'];
  const labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 2];
  const predictions = [0, 0, 0, 1, 1, 1, 0, 2, 2, 2];
  const matrix = confusionMatrix(labels, predictions, 3);

  it('counts the confusion matrix [true][predicted]', () => {
    expect(matrix).toEqual([
      [3, 1, 0],
      [1, 2, 2],
      [0, 0, 1],
    ]);
  });

  it('gives per-class precision, recall and F1 as scikit-learn does', () => {
    // cat: P = 3/4, R = 3/4; dog: P = 2/3, R = 2/5; eel: P = 1/3, R = 1.
    const report = classReport(matrix, classes);
    expect(report.map((r) => r.support)).toEqual([4, 5, 1]);
    expect(report[0]!.precision).toBeCloseTo(0.75, 12);
    expect(report[0]!.recall).toBeCloseTo(0.75, 12);
    expect(report[1]!.precision).toBeCloseTo(2 / 3, 12);
    expect(report[1]!.recall).toBeCloseTo(0.4, 12);
    expect(report[1]!.f1).toBeCloseTo((2 * (2 / 3) * 0.4) / (2 / 3 + 0.4), 12); // 0.5
    expect(report[2]!.f1).toBeCloseTo((2 * (1 / 3) * 1) / (1 / 3 + 1), 12); // 0.5
  });

  it('ranks the most-confused pairs by count, then by rate', () => {
    expect(mostConfused(matrix, classes)).toEqual([
      { actual: 'dog', predicted: 'eel', count: 2, rate: 0.4 },
      { actual: 'cat', predicted: 'dog', count: 1, rate: 0.25 },
      { actual: 'dog', predicted: 'cat', count: 1, rate: 0.2 },
    ]);
  });

  it('softmax rows sum to 1 and match exp(x)/sum(exp) in float64', () => {
    const out = softmaxRows(Float32Array.of(1, 2, 3, 1000, 1000, 0), 3);
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const sum = e[0]! + e[1]! + e[2]!;
    e.forEach((v, i) => expect(out[i]).toBeCloseTo(v / sum, 7));
    expect(Array.from(out.subarray(3))).toEqual([0.5, 0.5, 0]);
  });
});

describe('model inputs and metadata', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-inputs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const options = { cwd: dir, imageExtensions: ['.png', '.jpg'] };

  it('expands files, folders (recursive, sorted, images and records only) and globs; a name matching nothing is an error', () => {
    mkdirSync(join(dir, 'photos', 'more'), { recursive: true });
    for (const file of ['photos/b.png', 'photos/a.jpg', 'photos/notes.txt', 'photos/more/c.png', 'test.bin']) writeFileSync(join(dir, file), 'x');
    expect(expandInputs(['photos'], options).map((f) => f.slice(dir.length + 1))).toEqual(['photos/a.jpg', 'photos/b.png', 'photos/more/c.png']);
    expect(expandInputs(['photos/*.png', 'test.bin'], options).map((f) => f.slice(dir.length + 1))).toEqual(['photos/b.png', 'test.bin']);
    expect(() => expandInputs(['nope.png'], options)).toThrow(/nope\.png: no such file or folder/);
    expect(() => expandInputs(['*.gif'], options)).toThrow(/\*\.gif: no file matches this pattern/);
    mkdirSync(join(dir, 'empty'));
    expect(() => expandInputs(['empty'], options)).toThrow(/empty: the folder has no image \(\.png \.jpg\) or record/);
  });

  it('reads CIFAR-100 records (coarse, fine label) planes into NHWC', () => {
    // 2x1 image, 3 channels: R plane [10, 11], G [20, 21], B [30, 31]; labels coarse 7, fine 42.
    const bytes = Uint8Array.of(7, 42, 10, 11, 20, 21, 30, 31);
    const { pixels, labels, count } = readRecords(bytes, [1, 2, 3], { labelBytes: 2, labelIndex: 1 }, 'x.bin');
    expect(count).toBe(1);
    expect(labels).toEqual([42]);
    expect(Array.from(pixels)).toEqual([10, 20, 30, 11, 21, 31]);
  });

  it('reads inputs in batches of at most batchSize images, a record file split across them, in order; the batches make up readInputs', async () => {
    // 1x1 RGB images. Records: label byte, then R, G, B planes of one pixel; record r is label r, pixel (r, 10r, 100+r).
    writeFileSync(join(dir, 'five.bin'), Uint8Array.from(Array.from({ length: 5 }, (_, r) => [r, r, 10 * r, 100 + r]).flat()));
    // A "decoder" that makes pixel (value, value, value) from the file's first byte.
    const decode = async (bytes: Uint8Array, o: { height: number; width: number; channels: number }) => ({ data: new Uint8Array(o.height * o.width * o.channels).fill(bytes[0]!) });
    writeFileSync(join(dir, 'a.png'), Uint8Array.of(200));
    writeFileSync(join(dir, 'b.png'), Uint8Array.of(201));
    const files = ['a.png', 'five.bin', 'b.png'].map((f) => join(dir, f));
    const read = { shape: [1, 1, 3], records: { labelBytes: 1, labelIndex: 0 }, cwd: dir, decode };
    const batches = [];
    for await (const batch of readInputBatches(files, { ...read, batchSize: 3 })) batches.push(batch);
    expect(batches.map((b) => b.names)).toEqual([['a.png', 'five.bin#0', 'five.bin#1'], ['five.bin#2', 'five.bin#3', 'five.bin#4'], ['b.png']]);
    expect(batches.map((b) => b.labels)).toEqual([[undefined, 0, 1], [2, 3, 4], [undefined]]);
    expect(batches.map((b) => Array.from(b.pixels))).toEqual([
      [200, 200, 200, 0, 0, 100, 1, 10, 101],
      [2, 20, 102, 3, 30, 103, 4, 40, 104],
      [201, 201, 201],
    ]);
    const all = await readInputs(files, read);
    expect(all.names).toEqual(batches.flatMap((b) => b.names));
    expect(Array.from(all.pixels)).toEqual(batches.flatMap((b) => Array.from(b.pixels)));
    writeFileSync(join(dir, 'torn.bin'), new Uint8Array(6));
    await expect(readInputs([join(dir, 'torn.bin')], read)).rejects.toThrow(/torn\.bin: 6 bytes is not a whole number of 4-byte records/);
  });

  it('names what an old or foreign model.json lacks', () => {
    expect(() => checkModelMetadata({}, 'plain/')).toThrow(/plain\/: model.json has no Tessera metadata/);
    expect(() => checkModelMetadata({ inputShape: [8, 8, 3], data: { type: 'synthetic', transforms: [] } }, 'old/')).toThrow(
      /old\/: the model was written by an older Tessera \(metadata format 1\) and lacks rawShape, classes, config, data\.state, data\.numClasses, data\.records/,
    );
  });

  it('digests configs independently of key order', () => {
    expect(configDigest({ a: 1, b: { c: [1, 2], d: 'x' } })).toBe(configDigest({ b: { d: 'x', c: [1, 2] }, a: 1 }));
    expect(configDigest({ a: 1 })).not.toBe(configDigest({ a: 2 }));
  });

  it("is the config fingerprint's first 12 digits: for a real experiment, the digest models saved before", () => {
    // The digest as models recorded it before it became the one fingerprint: sha256 of JSON with keys sorted by hand.
    const sorted = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(sorted)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(Object.keys(value).sort().map((key) => [key, sorted((value as Record<string, unknown>)[key])]))
          : value;
    const { config } = loadExperiment(fileURLToPath(new URL('../../../../experiments/mixer.yaml', import.meta.url)));
    const before = createHash('sha256').update(JSON.stringify(sorted(config))).digest('hex').slice(0, 12);
    expect(configDigest(config)).toBe(before);
    expect(configDigest(config)).toBe(fingerprint(config).slice(0, 12));
  });
});
