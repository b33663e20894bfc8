import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { globSync } from 'tinyglobby';
import { ConfigError } from '../errors.ts';
import type { ImageBatch } from '../graph/predict.ts';
import type { RecordFormat } from './metadata.ts';

/* ------------------------------------------------------------------------------------------ *
 * What `exp predict --input` accepts: image files, folders of them, globs, and binary files   *
 * of dataset records (CIFAR's .bin / .bin.gz), read into one batch of raw images.             *
 * ------------------------------------------------------------------------------------------ */

/** Decodes an encoded image into height x width x channels uint8 HWC pixels (packages/data's decodeImage fits). */
export type ImageDecoder = (
  input: Uint8Array,
  options: { height: number; width: number; channels: 1 | 3 | 4; name?: string },
) => Promise<{ data: Uint8Array }>;

const RECORD_EXTENSIONS = ['.bin', '.bin.gz'];

function isRecordFile(file: string): boolean {
  return RECORD_EXTENSIONS.some((ext) => file.toLowerCase().endsWith(ext));
}

/**
 * The files the inputs name, in order: a file as given, a folder's images and record files
 * (recursively, sorted), a glob's matches (sorted). A name that matches nothing is an error.
 */
export function expandInputs(inputs: readonly string[], options: { cwd: string; imageExtensions: readonly string[] }): string[] {
  const { cwd, imageExtensions } = options;
  const isImageFile = (file: string) => imageExtensions.includes(extname(file).toLowerCase());
  const files: string[] = [];
  for (const input of inputs) {
    const path = resolve(cwd, input);
    let stats;
    try {
      stats = statSync(path);
    } catch {
      stats = undefined;
    }
    if (stats?.isFile()) files.push(path);
    else if (stats?.isDirectory()) {
      const found = (readdirSync(path, { recursive: true }) as string[])
        .map((name) => join(path, name))
        .filter((file) => (isImageFile(file) || isRecordFile(file)) && statSync(file).isFile())
        .sort();
      if (found.length === 0) throw new ConfigError({ message: `${input}: the folder has no image (${imageExtensions.join(' ')}) or record (.bin) files` });
      files.push(...found);
    } else if (/[*?[\]{}]/.test(input)) {
      const found = globSync(input, { cwd, absolute: true, onlyFiles: true }).sort();
      if (found.length === 0) throw new ConfigError({ message: `${input}: no file matches this pattern` });
      files.push(...found);
    } else {
      throw new ConfigError({ message: `${input}: no such file or folder` });
    }
  }
  return files;
}

/** Images [n, h, w, c] (uint8 values as float32) and labels from binary records: label bytes, then one plane per channel. */
export function readRecords(bytes: Uint8Array, shape: number[], format: RecordFormat, file: string) {
  const [height, width, channels] = shape as [number, number, number];
  const plane = height * width;
  const recordSize = format.labelBytes + plane * channels;
  if (bytes.length === 0 || bytes.length % recordSize !== 0) {
    throw new ConfigError({
      message: `${file}: ${bytes.length} bytes is not a whole number of ${recordSize}-byte records (${format.labelBytes} label byte(s) + ${height}x${width}x${channels} pixels)`,
    });
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

/** A batch of inputs with a name per image (`photo.jpg`, `test.bin#12`) and labels where the file had them. */
export interface NamedImages extends ImageBatch {
  names: string[];
  /** Per image: the record's label, or undefined for an image file. */
  labels: (number | undefined)[];
}

export interface ReadInputsOptions {
  /** One raw image, [height, width, channels]: images are decoded and resized to it. */
  shape: number[];
  records: RecordFormat;
  cwd: string;
  /** Needed only for image files. */
  decode?: ImageDecoder;
}

/**
 * Reads the files in order as batches of at most `batchSize` images (a record file is split
 * across batches), so that classifying a large folder holds one batch of pixels at a time, not
 * every image. An unreadable or undecodable file is an error naming it.
 */
export async function* readInputBatches(files: readonly string[], options: ReadInputsOptions & { batchSize: number }): AsyncGenerator<NamedImages> {
  const [height, width, channels] = options.shape as [number, number, number];
  const size = height * width * channels;
  const recordSize = options.records.labelBytes + size;
  let batch: { parts: Float32Array[]; names: string[]; labels: (number | undefined)[] } = { parts: [], names: [], labels: [] };
  const take = (): NamedImages => {
    const images = { pixels: concatFloat32(batch.parts), count: batch.names.length, shape: [height, width, channels], names: batch.names, labels: batch.labels };
    batch = { parts: [], names: [], labels: [] };
    return images;
  };
  for (const file of files) {
    const shown = relative(options.cwd, file).startsWith('..') ? file : relative(options.cwd, file);
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      throw new ConfigError({ message: `${shown}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` });
    }
    if (isRecordFile(file)) {
      if (file.toLowerCase().endsWith('.gz')) {
        try {
          bytes = gunzipSync(bytes);
        } catch (error) {
          throw new ConfigError({ message: `${shown}: not a valid gzip file (${(error as Error).message})` });
        }
      }
      if (bytes.length === 0 || bytes.length % recordSize !== 0) readRecords(bytes, options.shape, options.records, shown); // throws, naming the file
      const count = bytes.length / recordSize;
      for (let start = 0; start < count; ) {
        const end = Math.min(count, start + options.batchSize - batch.names.length);
        const read = readRecords(bytes.subarray(start * recordSize, end * recordSize), options.shape, options.records, shown);
        batch.parts.push(read.pixels);
        read.labels.forEach((label, i) => {
          batch.names.push(`${shown}#${start + i}`);
          batch.labels.push(label);
        });
        start = end;
        if (batch.names.length >= options.batchSize) yield take();
      }
      continue;
    }
    if (!options.decode) throw new ConfigError({ message: `${shown}: image files need the image decoder, which this build lacks` });
    if (channels !== 1 && channels !== 3 && channels !== 4) throw new ConfigError({ message: `${shown}: the model takes ${channels}-channel images, which no image format holds` });
    let decoded;
    try {
      decoded = await options.decode(bytes, { height, width, channels, name: shown });
    } catch (error) {
      const message = (error as Error).message;
      throw new ConfigError({ message: message.includes(shown) ? message : `${shown}: ${message}` });
    }
    if (decoded.data.length !== size) throw new ConfigError({ message: `${shown}: decoded to ${decoded.data.length} values, expected ${height}x${width}x${channels}` });
    batch.parts.push(Float32Array.from(decoded.data));
    batch.names.push(shown);
    batch.labels.push(undefined);
    if (batch.names.length >= options.batchSize) yield take();
  }
  if (batch.names.length > 0) yield take();
}

/** The arrays one after another in one array (a batch's pixels, a run of batches' probabilities). */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const all = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** Reads every file into one batch (readInputBatches without the bound on memory). */
export async function readInputs(files: readonly string[], options: ReadInputsOptions): Promise<NamedImages> {
  for await (const batch of readInputBatches(files, { ...options, batchSize: Number.MAX_SAFE_INTEGER })) return batch; // the only one
  return { pixels: new Float32Array(0), count: 0, shape: options.shape, names: [], labels: [] };
}
