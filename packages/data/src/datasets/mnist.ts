/**
 * MNIST and Fashion-MNIST from the official IDX files (`train-images-idx3-ubyte[.gz]`, ...):
 * found in `dir`/$TESSERA_DATA_DIR or the cache, else downloaded once into the cache with their
 * md5 checked (the same checksums torchvision and Keras use).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ImageSet } from '../store.ts';
import { gunzipFile } from './cifar.ts';
import { downloadFile, md5File } from './download.ts';
import { DataError } from './errors.ts';

/** Every MNIST-family image: 28x28, one channel. */
export const IDX_IMAGE_SHAPE: [number, number, number] = [28, 28, 1];

export interface IdxFile {
  /** The official (gzipped) file name; the unzipped name drops `.gz`. */
  file: string;
  md5: string;
}

export interface IdxFormat {
  name: string;
  /** Folder name inside the cache and inside `dir` (also searched). */
  folder: string;
  /** Base URL the four files are downloaded from (ends with '/'). */
  url: string;
  classNames: string[];
  trainImages: IdxFile;
  trainLabels: IdxFile;
  testImages: IdxFile;
  testLabels: IdxFile;
}

export const MNIST: IdxFormat = {
  name: 'MNIST',
  folder: 'mnist',
  // TensorFlow's mirror of the official files (yann.lecun.com is often unreachable).
  url: 'https://storage.googleapis.com/cvdf-datasets/mnist/',
  classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  trainImages: { file: 'train-images-idx3-ubyte.gz', md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873' },
  trainLabels: { file: 'train-labels-idx1-ubyte.gz', md5: 'd53e105ee54ea40749a09fcbcd1e9432' },
  testImages: { file: 't10k-images-idx3-ubyte.gz', md5: '9fb629c4189551a2d022fa330f9573f3' },
  testLabels: { file: 't10k-labels-idx1-ubyte.gz', md5: 'ec29112dd5afa0611ce80d1b7f02629c' },
};

export const FASHION_MNIST: IdxFormat = {
  name: 'Fashion-MNIST',
  folder: 'fashion_mnist',
  // Where Keras' fashion_mnist.load_data() downloads the official files from.
  url: 'https://storage.googleapis.com/tensorflow/tf-keras-datasets/',
  classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  trainImages: { file: 'train-images-idx3-ubyte.gz', md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d' },
  trainLabels: { file: 'train-labels-idx1-ubyte.gz', md5: '25c81989df183df01b3e8a0aad5dffbe' },
  testImages: { file: 't10k-images-idx3-ubyte.gz', md5: 'bef4ecab320f06d8554ea6380940ec79' },
  testLabels: { file: 't10k-labels-idx1-ubyte.gz', md5: 'bb300cfdad3c16e7a12a480ee83cd310' },
};

export interface IdxLoadOptions {
  /** Directory holding the four files (gzipped or not), directly or in a `<folder>` subfolder. */
  dir?: string;
  cacheDir: string;
  download: boolean;
  /** Base URL override (a mirror). */
  url?: string;
  log: (message: string) => void;
}

export interface IdxData {
  train: ImageSet;
  test: ImageSet;
  fingerprint: string;
  source: string;
}

const be32 = (bytes: Uint8Array, at: number) => ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;

/** Reads an IDX file of unsigned bytes: its dimensions and where the data starts. Checks the header and the size. */
export function parseIdx(bytes: Uint8Array, file: string, expectedDims: number): { dims: number[]; offset: number } {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new DataError(file, 'not an IDX file (bad magic number)');
  if (bytes[2] !== 0x08) throw new DataError(file, `IDX data type 0x${bytes[2]!.toString(16)} is not unsigned bytes (0x08)`);
  const ndims = bytes[3]!;
  if (ndims !== expectedDims) throw new DataError(file, `IDX file has ${ndims} dimensions, expected ${expectedDims}`);
  const offset = 4 + 4 * ndims;
  if (bytes.length < offset) throw new DataError(file, 'truncated IDX header');
  const dims = Array.from({ length: ndims }, (_, i) => be32(bytes, 4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== offset + size) {
    throw new DataError(file, `IDX file has ${bytes.length - offset} data bytes, its header says ${dims.join('x')} = ${size}: truncated or corrupt; delete it to download it again`);
  }
  return { dims, offset };
}

/** Images + labels files into one ImageSet, used in place (28x28x1: planar and interleaved agree). */
export function idxImageSet(images: Uint8Array, labels: Uint8Array, files: [string, string], classes: number): ImageSet {
  const img = parseIdx(images, files[0], 3);
  const lab = parseIdx(labels, files[1], 1);
  const [count, height, width] = img.dims as [number, number, number];
  if (lab.dims[0] !== count) throw new DataError(files[1], `${lab.dims[0]} labels for ${count} images in ${files[0]}`);
  const labelBytes = labels.subarray(lab.offset);
  const bad = labelBytes.findIndex((l) => l >= classes);
  if (bad >= 0) throw new DataError(files[1], `label ${labelBytes[bad]} of example ${bad} is not below ${classes}`);
  return { bytes: images, count, height, width, channels: 1, offset: img.offset, stride: height * width, labels: labelBytes };
}

const parts = (format: IdxFormat) => [format.trainImages, format.trainLabels, format.testImages, format.testLabels];

/** The first place holding each file, gzipped or not: dir, dir/<folder>, the cache. */
function locate(format: IdxFormat, options: IdxLoadOptions): (string | undefined)[] {
  const dirs = [...(options.dir ? [options.dir, join(options.dir, format.folder)] : []), join(options.cacheDir, format.folder)];
  return parts(format).map(({ file }) => {
    for (const d of dirs) for (const name of [file, file.replace(/\.gz$/, '')]) if (existsSync(join(d, name))) return join(d, name);
    return undefined;
  });
}

async function readMaybeGzip(file: string): Promise<Uint8Array> {
  const bytes = readFileSync(file);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipFile(bytes, file) : bytes;
}

export async function loadIdx(format: IdxFormat, options: IdxLoadOptions): Promise<IdxData> {
  const found = locate(format, options);
  const cacheFolder = join(options.cacheDir, format.folder);
  const missing = parts(format).filter((_, i) => !found[i]);
  if (missing.length > 0) {
    const whereToPut =
      `put ${parts(format).map((p) => p.file).join(', ')} (gzipped or not)` +
      (options.dir ? ` into ${resolve(options.dir)}` : ' into a directory named by data.dir or TESSERA_DATA_DIR') +
      `, or into ${cacheFolder}`;
    if (!options.download) throw new DataError(options.dir ?? cacheFolder, `${format.name} not found (${missing.map((m) => m.file).join(', ')} missing); ${whereToPut}`);
    const base = options.url ?? format.url;
    for (const part of missing) {
      const dest = join(cacheFolder, part.file);
      options.log(`${format.name}: downloading ${base}${part.file} to ${dest}`);
      try {
        await downloadFile(`${base}${part.file}`, dest, { md5: part.md5, log: options.log });
      } catch (cause) {
        throw new DataError(dest, `${format.name} not found and the download failed (${(cause as Error).message}). Offline? Then ${whereToPut}`, { cause });
      }
      found[parts(format).indexOf(part)] = dest;
    }
  }
  // A downloaded-then-damaged official file in the cache is caught by its md5; files the user
  // put in `dir` may be unzipped or re-zipped, so they are checked by their IDX header instead.
  for (const [i, file] of found.entries()) {
    if (file!.startsWith(cacheFolder) && file!.endsWith('.gz')) {
      const md5 = await md5File(file!);
      if (md5 !== parts(format)[i]!.md5) throw new DataError(file!, `md5 is ${md5}, expected ${parts(format)[i]!.md5}: corrupt or incomplete; delete it to download it again`);
    }
  }
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all(found.map((f) => readMaybeGzip(f!)));
  const classes = format.classNames.length;
  const train = idxImageSet(trainImages!, trainLabels!, [found[0]!, found[1]!], classes);
  const test = idxImageSet(testImages!, testLabels!, [found[2]!, found[3]!], classes);
  const fingerprint = createHash('sha1').update(format.name).update(trainImages!).update(trainLabels!).update(testImages!).update(testLabels!).digest('hex').slice(0, 16);
  return { train, test, fingerprint, source: found[0]!.replace(/\/[^/]*$/, '') };
}
