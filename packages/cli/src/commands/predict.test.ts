import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { importModel, predictImages } from '@tessera/core';
import { builtinRegistries } from '@tessera/builtins';
import { normalisedRecords, runCli, smallRecords } from '../test-helpers.ts';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const work = mkdtempSync(join(tmpdir(), 'tessera-predict-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const exp = (...argv: string[]) => runCli(argv, { cwd: work, registries: builtinRegistries });

const EXPERIMENT = `
name: tiny
seed: 3
backend: cpu
data:
  type: synthetic
  image_shape: [8, 8, 3]
  num_classes: 4
  train_size: 64
  test_size: 16
  transforms: [{type: normalize}, {type: random_flip, mode: horizontal}]
model:
  layers:
    - {type: patches, size: 4}
    - {type: dense, units: 8, activation: gelu}
    - {type: layer_norm, epsilon: 1.0e-6}
    - {type: global_average_pooling, axis: 1}
    - {type: dense, units: 4, name: logits}
train: {epochs: 1, batch_size: 8, optimizer: {type: adamw, learning_rate: 0.01}}
`;

describe('exp summary', () => {
  it('prints the Keras-style table and the exact parameter count of the reference Mixer', async () => {
    const table = await exp('summary', join(ROOT, 'experiments/mixer.yaml'));
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/block_4\/norm \(LayerNorm\) x2 +\(None, 64, 256\) +512/);
    expect(table.stdout).toMatch(/Trainable params: 242,788/);
    const json = await exp('summary', join(ROOT, 'experiments/gmlp.yaml'), '--json');
    expect(JSON.parse(json.stdout).trainableParams).toBe(885_348);
  });

  it('reports a bad override as a located config error, exit 2', async () => {
    const result = await exp('summary', join(ROOT, 'experiments/fnet.yaml'), '--set', 'model.vars.patch_size=7');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/not divisible into 7x7 patches/);
  });
});

describe('exp export + exp predict', () => {
  it('a bad --out is exit 2 before any model is loaded (here: a model that does not exist)', async () => {
    const result = await exp('predict', 'no-such-model', '--input', 'images.bin', '--out', join(work, 'no-such-folder', 'p.json'));
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--out .*p\.json: no such folder .*no-such-folder/);
    expect(result.stderr).not.toMatch(/no-such-model|ENOENT|\n\s+at /);
  });

  it('writes a loadable model whose predictions on raw records match a hand-normalised forward pass', async () => {
    const file = join(work, 'tiny.yaml');
    writeFileSync(file, EXPERIMENT);
    const exported = await exp('export', file, '--init', '--out', 'model');
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/wrote model\/model.json and weights.bin/);

    const bytes = smallRecords(5);
    writeFileSync(join(work, 'images.bin'), bytes);
    const predicted = await exp('predict', 'model', '--input', 'images.bin', '--out', 'predictions.json', '--batch-size', '2');
    expect(predicted.code, predicted.stderr).toBe(0);
    const result = JSON.parse(readFileSync(join(work, 'predictions.json'), 'utf8'));
    expect(result.predictions.map((p: { label: number }) => p.label)).toEqual([0, 1, 2, 3, 0]);
    expect(result.classes).toEqual(['class_0', 'class_1', 'class_2', 'class_3']);

    // Independently: planes -> NHWC by hand, (x - mean) / sqrt(variance) with the saved statistics, softmax in float64.
    const { model, metadata } = await importModel(join(work, 'model'));
    const pixels = normalisedRecords(bytes, 5, (metadata.data as { state: { normalize: { mean: number[]; variance: number[] } } }).state.normalize);
    const flat = await predictImages(model, { pixels, count: 5, shape: [8, 8, 3] }, []);
    const want = Array.from({ length: 5 }, (_, i) => {
      const row = Array.from(flat.subarray(i * 4, i * 4 + 4));
      const exps = row.map((v) => Math.exp(v - Math.max(...row)));
      return exps.map((e) => e / exps.reduce((a, b) => a + b, 0));
    });
    result.predictions.forEach((p: { probabilities: number[] }, i: number) => p.probabilities.forEach((v, j) => expect(v).toBeCloseTo(want[i]![j]!, 5)));
    expect(result.predictions.map((p: { top_k: { index: number }[] }) => p.top_k[0]!.index)).toEqual(want.map((row) => row.indexOf(Math.max(...row))));

    const npy = await exp('predict', 'model', '--input', 'images.bin', '--out', 'probabilities.npy');
    expect(npy.code, npy.stderr).toBe(0);
    const raw = readFileSync(join(work, 'probabilities.npy'));
    const headerLength = raw.readUInt16LE(8);
    expect(raw.subarray(10, 10 + headerLength).toString('latin1')).toMatch(/'descr': '<f4', 'fortran_order': False, 'shape': \(5, 4\)/);
    expect((10 + headerLength) % 64).toBe(0);
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset + 10 + headerLength, raw.byteOffset + raw.length));
    expect(Array.from(values)).toEqual(result.predictions.flatMap((p: { probabilities: number[] }) => p.probabilities).map(Math.fround));

    const csv = await exp('predict', 'model', '--input', 'images.bin', '--out', 'predictions.csv');
    expect(csv.code, csv.stderr).toBe(0);
    const lines = readFileSync(join(work, 'predictions.csv'), 'utf8').trim().split('\n');
    expect(lines[0]).toBe('input,label,prediction,probability,class_0,class_1,class_2,class_3');
    expect(lines).toHaveLength(6);
    expect(lines[1]).toMatch(/^images\.bin#0,0,class_\d,0\.\d+,/);

    const table = await exp('predict', 'model', '--input', 'images.bin', '--top-k', '2');
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^input +label +top-1 +top-2$/);
    expect(table.stdout).toMatch(/images\.bin#4 +class_0 +class_\d \d+\.\d\d% +class_\d \d+\.\d\d%/);
    expect(table.stderr).toMatch(/5 labelled images: accuracy \d+\.\d\d%/);
  });

  it('refuses a file that is not whole records, exit 2', async () => {
    writeFileSync(join(work, 'broken.bin'), new Uint8Array(100));
    const result = await exp('predict', 'model', '--input', 'broken.bin');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/100 bytes is not a whole number of 193-byte records/);
  });
});
