import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { EntryConfig, TransformState } from '@tessera/core';
import { defineCommand, UsageError } from '../command.ts';
import type { RecordFormat } from './export.ts';

/** What `exp export` stores about the data (model.json `userDefinedMetadata.tessera.data`). */
interface ExportedData {
  type: string;
  transforms: EntryConfig[];
  state: Record<string, TransformState>;
  numClasses: number;
  labelNames?: string[];
  records: RecordFormat;
}

/** Images [n, h, w, c] (uint8 values) and labels from binary records: label bytes, then one plane per channel. */
export function readRecords(bytes: Uint8Array, shape: number[], format: RecordFormat, file: string) {
  const [height, width, channels] = shape as [number, number, number];
  const plane = height * width;
  const recordSize = format.labelBytes + plane * channels;
  if (bytes.length === 0 || bytes.length % recordSize !== 0) {
    throw new UsageError(`${file}: ${bytes.length} bytes is not a whole number of ${recordSize}-byte records (${format.labelBytes} label byte(s) + ${height}x${width}x${channels} pixels)`, 'predict');
  }
  const count = bytes.length / recordSize;
  const pixels = new Float32Array(count * plane * channels);
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const record = i * recordSize;
    labels.push(bytes[record + format.labelIndex]!);
    // Planes (all red, all green, all blue) become interleaved NHWC.
    for (let c = 0; c < channels; c++) {
      const from = record + format.labelBytes + c * plane;
      for (let p = 0; p < plane; p++) pixels[(i * plane + p) * channels + c] = bytes[from + p]!;
    }
  }
  return { pixels, labels, count };
}

/** A float32 array as an .npy file (format 1.0, little-endian, C order). */
export function npy(values: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(10 + header.length + values.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 10 + header.length);
  return out;
}

export default defineCommand({
  name: 'predict',
  summary: 'Run an exported model on a file of images and write the logits',
  description:
    'Loads a model written by `exp export` (DIR/model.json + weights.bin), reads images from a binary file in ' +
    'the dataset\'s record layout (CIFAR: label byte(s), then 1024 red, 1024 green, 1024 blue; .bin or .bin.gz), ' +
    'applies the experiment\'s deterministic preprocessing with the saved statistics, and writes the logits: ' +
    'JSON (labels, predictions, logits) to --out or stdout, or an [n, classes] float32 .npy with --format npy.',
  positionals: [{ name: 'DIR', description: 'Directory written by exp export' }],
  options: {
    input: { type: 'string', placeholder: 'FILE', description: 'Binary records to classify (.bin or .bin.gz)' },
    out: { type: 'string', placeholder: 'FILE', description: 'Where to write the result (default: stdout; required for npy)' },
    format: { type: 'string', placeholder: 'json|npy', default: 'json', description: 'Output format' },
    'batch-size': { type: 'string', placeholder: 'N', default: '128', description: 'Images per forward pass' },
    backend: { type: 'string', placeholder: 'NAME', default: 'auto', description: 'auto, tensorflow-gpu, tensorflow, wasm or cpu' },
  },
  examples: [
    ['exp predict models/smoke --input test.bin --out logits.json', 'Logits, predictions and labels as JSON'],
    ['exp predict models/smoke --input test.bin.gz --format npy --out logits.npy', 'Logits as a NumPy array'],
  ],
  async run({ positionals, options }, context) {
    if (!options.input) throw new UsageError('--input FILE is required', 'predict');
    if (options.format !== 'json' && options.format !== 'npy') throw new UsageError(`--format is json or npy, got "${options.format}"`, 'predict');
    if (options.format === 'npy' && !options.out) throw new UsageError('--format npy needs --out FILE', 'predict');
    const batchSize = Number(options['batch-size']);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`--batch-size expects a positive integer, got "${options['batch-size']}"`, 'predict');

    const registries = await context.registries(); // registers the primitives' layer classes too
    const { importModel, predictImages, selectBackend, disposeModel, MODEL_FILE } = await import('@tessera/core');
    await selectBackend(options.backend as Parameters<typeof selectBackend>[0], () => {});
    const dir = resolve(context.cwd, positionals[0]!);
    let loaded: Awaited<ReturnType<typeof importModel>>;
    try {
      loaded = await importModel(dir);
    } catch (error) {
      throw new UsageError(`cannot load a model from ${relative(context.cwd, dir) || dir}/${MODEL_FILE}: ${(error as Error).message}`, 'predict');
    }
    const { model, metadata } = loaded;
    const data = metadata.data as ExportedData | undefined;
    const inputShape = metadata.inputShape as number[] | undefined;
    if (!data || !inputShape) throw new UsageError(`${positionals[0]}: no Tessera metadata in ${MODEL_FILE}; write the model with \`exp export\``, 'predict');

    const inputFile = resolve(context.cwd, options.input);
    if (!existsSync(inputFile) || !statSync(inputFile).isFile()) {
      throw new UsageError(`--input ${options.input}: ${existsSync(inputFile) ? 'is not a file' : 'no such file'}`, 'predict');
    }
    // A bad --out is reported before inference, not after it.
    if (options.out) {
      const out = resolve(context.cwd, options.out);
      const parent = dirname(out);
      if (existsSync(out) && statSync(out).isDirectory()) throw new UsageError(`--out ${options.out}: is a directory; give a file name`, 'predict');
      if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new UsageError(`--out ${options.out}: directory ${parent} does not exist`, 'predict');
    }
    let bytes: Uint8Array = readFileSync(inputFile);
    if (inputFile.endsWith('.gz')) bytes = gunzipSync(bytes);
    const rawShape = (data.type === 'cifar100' || data.type === 'cifar10' ? [32, 32, 3] : (metadata.config as { data: { image_shape?: number[] } }).data.image_shape) ?? [32, 32, 3];
    const { pixels, labels, count } = readRecords(bytes, rawShape, data.records, options.input);

    // The experiment's transforms with the statistics saved at export; predictImages applies the deterministic ones.
    const { restoreTransforms } = await import('@tessera/data');
    const transforms = restoreTransforms(data.transforms, data.state, registries);
    const logits = await predictImages(model, { pixels, count, shape: rawShape }, transforms, batchSize);
    const predictions = Array.from({ length: count }, (_, i) => {
      const row = logits.subarray(i * data.numClasses, (i + 1) * data.numClasses);
      return row.indexOf(Math.max(...row));
    });
    const correct = predictions.filter((p, i) => p === labels[i]).length;
    context.stderr.write(`${count} images; accuracy against the labels in the file: ${((100 * correct) / count).toFixed(2)}%\n`);

    if (options.format === 'npy') {
      writeFileSync(resolve(context.cwd, options.out!), npy(logits, [count, data.numClasses]));
    } else {
      const rows = Array.from({ length: count }, (_, i) => Array.from(logits.subarray(i * data.numClasses, (i + 1) * data.numClasses)));
      const json = `${JSON.stringify({ model: positionals[0], input: options.input, labels, predictions, logits: rows })}\n`;
      if (options.out) writeFileSync(resolve(context.cwd, options.out), json);
      else context.stdout.write(json);
    }
    disposeModel(model);
  },
});
