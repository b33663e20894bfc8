import { existsSync, readFileSync, statSync } from 'node:fs';
import { cacheRoot, describeValue, type Dataset, type DatasetContext, type DatasetEntry } from '@tessera/core/registry';
import { createPipeline } from '../pipeline.ts';
import { range } from '../store.ts';
import { buildTransforms, commonSchema, configRelativePath, paramError, splitTraining, transformedShape, type CommonParams } from './common.ts';
import { CIFAR10, CIFAR100, CIFAR_IMAGE_SHAPE, gunzipFile, loadCifar, parseRecords, type CifarFormat, type LabelMode } from './cifar.ts';
import { imageFolderEntry, manifestEntry } from './images/entries.ts';
import { FASHION_MNIST, IDX_IMAGE_SHAPE, MNIST, loadIdx, type IdxFormat } from './mnist.ts';
import { syntheticFingerprint, syntheticImages } from './synthetic.ts';

interface CifarParams extends CommonParams {
  dir?: string;
  search?: string[];
  label_mode?: LabelMode;
  validation_file?: string;
  download?: boolean;
  url?: string;
  md5?: string;
  cache_dir?: string;
  cache_decoded?: boolean;
}

/**
 * Where a CIFAR entry looks for its files (see `findCifar` for the order): `dir`, else
 * $TESSERA_DATA_DIR; then the `search` directories; then the cache (`cache_dir`, else the default).
 */
export function cifarPlaces(
  params: { dir?: string; search?: string[]; cache_dir?: string },
  ctx: Pick<DatasetContext, 'configDir' | 'locate'>,
  env: NodeJS.ProcessEnv = process.env,
): { dir: string | undefined; searchDirs: string[]; cacheDir: string } {
  return {
    dir: params.dir !== undefined ? configRelativePath(['data', 'dir'], params.dir, ctx) : env.TESSERA_DATA_DIR || undefined,
    searchDirs: (params.search ?? []).map((p, i) => configRelativePath(['data', 'search', i], p, ctx)),
    cacheDir: params.cache_dir !== undefined ? configRelativePath(['data', 'cache_dir'], params.cache_dir, ctx) : cacheRoot(env),
  };
}

function cifarEntry(type: string, format: CifarFormat, withLabelMode: boolean): DatasetEntry<CifarParams> {
  return {
    type,
    description: `${format.name} from the official binary files (.bin, .bin.gz or ${format.archive.file}); downloaded when absent`,
    params: {
      properties: {
        // minLength: an empty dir would silently mean the experiment's own directory.
        dir: { type: 'string', minLength: 1, description: 'directory holding the binary files or the archive, relative to the experiment file; default: TESSERA_DATA_DIR, then the cache' },
        search: {
          type: 'array',
          items: { type: 'string' },
          description: 'more directories to look in, in order, after dir/TESSERA_DATA_DIR and before the cache; missing ones are skipped',
        },
        ...(withLabelMode ? { label_mode: { enum: ['fine', 'coarse'], default: 'fine', description: '100 fine or 20 coarse classes' } } : {}),
        ...commonSchema,
        validation_file: { type: 'string', description: `a ${format.name} binary file (.bin or .bin.gz) used as the validation set instead of a split` },
        download: { type: 'boolean', default: true, description: 'download the official archive into the cache when no local copy is found' },
        url: { type: 'string', default: format.archive.url, description: 'where to download the archive from (a mirror)' },
        md5: { type: 'string', pattern: '^[0-9a-f]{32}$', default: format.archive.md5, description: 'md5 of the archive' },
        cache_dir: { type: 'string', description: 'download and decode cache; default: TESSERA_CACHE or ~/.cache/tessera' },
        cache_decoded: { type: 'boolean', default: true, description: 'keep uncompressed copies of .gz files in the cache, so later runs skip gunzip' },
      },
      additionalProperties: false,
    },
    describe: (params, { registries }) => ({
      inputShape: transformedShape(CIFAR_IMAGE_SHAPE, params, registries),
      numClasses: format.classes[params.label_mode ?? 'fine'],
    }),
    async create(params, ctx: DatasetContext): Promise<Dataset> {
      const { dir, searchDirs, cacheDir } = cifarPlaces(params, ctx);
      if (params.dir !== undefined && !(existsSync(dir!) && statSync(dir!).isDirectory())) {
        throw paramError(ctx, ['dir'], { expected: `a directory holding ${format.name}`, found: `${describeValue(params.dir)} (${dir} does not exist)` });
      }
      if (params.validation_file !== undefined && (params.validation_split ?? 0) > 0) {
        throw paramError(ctx, ['validation_file'], { message: 'give either validation_file or validation_split, not both' });
      }
      const labelMode = params.label_mode ?? 'fine';
      const data = await loadCifar(format, {
        dir,
        searchDirs,
        labelMode,
        cacheDir,
        url: params.url,
        md5: params.md5,
        download: params.download ?? true,
        cacheDecoded: params.cache_decoded ?? true,
        log: ctx.log,
      });
      ctx.log(`${format.name}: ${data.train.count} training and ${data.test.count} test images from ${data.source}`);
      let splits = splitTraining(data.train, params, ctx.seed);
      if (params.validation_file !== undefined) {
        const file = configRelativePath(['data', 'validation_file'], params.validation_file, ctx);
        if (!existsSync(file)) throw paramError(ctx, ['validation_file'], { expected: 'an existing file', found: `${describeValue(params.validation_file)} (${file} does not exist)` });
        const bytes = readFileSync(file);
        const set = parseRecords(file.endsWith('.gz') ? await gunzipFile(bytes, file) : bytes, file, format, labelMode);
        splits = { train: splits.train, validation: { set, indices: range(0, set.count) } };
      }
      return createPipeline({
        info: { name: type, numClasses: format.classes[labelMode], labelNames: data.labelNames, fingerprint: data.fingerprint },
        splits: { ...splits, test: { set: data.test, indices: range(0, data.test.count) } },
        adaptOn: data.train,
        transforms: buildTransforms(params, ctx),
        cacheDir,
        log: ctx.log,
        ...(params.workers !== undefined ? { workers: params.workers } : {}),
      });
    },
  };
}

export const cifar100Entry = cifarEntry('cifar100', CIFAR100, true);
export const cifar10Entry = cifarEntry('cifar10', CIFAR10, false);

interface IdxParams extends CommonParams {
  dir?: string;
  download?: boolean;
  url?: string;
  cache_dir?: string;
}

function idxEntry(type: string, format: IdxFormat): DatasetEntry<IdxParams> {
  return {
    type,
    description: `${format.name} (28x28x1, 10 classes) from the official IDX files; downloaded into the cache when absent`,
    params: {
      properties: {
        dir: { type: 'string', description: `directory holding the four IDX files (gzipped or not, also in a ${format.folder}/ subfolder), relative to the experiment file; default: TESSERA_DATA_DIR, then the cache` },
        ...commonSchema,
        download: { type: 'boolean', default: true, description: 'download the official files into the cache when no local copy is found' },
        url: { type: 'string', default: format.url, description: 'base URL the four files are downloaded from (a mirror)' },
        cache_dir: { type: 'string', description: 'download cache; default: TESSERA_CACHE or ~/.cache/tessera' },
      },
      additionalProperties: false,
    },
    describe: (params, { registries }) => ({ inputShape: transformedShape(IDX_IMAGE_SHAPE, params, registries), numClasses: format.classNames.length }),
    async create(params, ctx: DatasetContext): Promise<Dataset> {
      const { dir, cacheDir } = cifarPlaces(params, ctx);
      if (params.dir !== undefined && !(existsSync(dir!) && statSync(dir!).isDirectory())) {
        throw paramError(ctx, ['dir'], { expected: `a directory holding ${format.name}`, found: `${describeValue(params.dir)} (${dir} does not exist)` });
      }
      const data = await loadIdx(format, { ...(dir ? { dir } : {}), cacheDir, download: params.download ?? true, ...(params.url ? { url: params.url } : {}), log: ctx.log });
      ctx.log(`${format.name}: ${data.train.count} training and ${data.test.count} test images from ${data.source}`);
      return createPipeline({
        info: { name: type, numClasses: format.classNames.length, labelNames: format.classNames, fingerprint: data.fingerprint },
        splits: { ...splitTraining(data.train, params, ctx.seed), test: { set: data.test, indices: range(0, data.test.count) } },
        adaptOn: data.train,
        transforms: buildTransforms(params, ctx),
        cacheDir,
        log: ctx.log,
        ...(params.workers !== undefined ? { workers: params.workers } : {}),
      });
    },
  };
}

export const mnistEntry = idxEntry('mnist', MNIST);
export const fashionMnistEntry = idxEntry('fashion_mnist', FASHION_MNIST);

interface SyntheticParams extends CommonParams {
  image_shape?: [number, number, number];
  num_classes?: number;
  train_size?: number;
  test_size?: number;
  noise?: number;
}

const SYNTHETIC_IMAGE_SHAPE: [number, number, number] = [32, 32, 3];
const SYNTHETIC_CLASSES = 10;

export const syntheticEntry: DatasetEntry<SyntheticParams> = {
  type: 'synthetic',
  description: 'Generated images: a fixed mean pattern per class plus noise (learnable; for tests and smoke runs)',
  params: {
    properties: {
      image_shape: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 3, maxItems: 3, default: [32, 32, 3], description: '[height, width, channels]' },
      num_classes: { type: 'integer', minimum: 1, maximum: 256, default: 10 },
      train_size: { type: 'integer', minimum: 1, default: 1000, description: 'training examples, before the validation split' },
      test_size: { type: 'integer', minimum: 1, default: 200 },
      noise: { type: 'number', minimum: 0, default: 40, description: 'standard deviation of the pixel noise on the 0..255 scale' },
      ...commonSchema,
    },
    additionalProperties: false,
  },
  describe: (params, { registries }) => ({
    inputShape: transformedShape(params.image_shape ?? SYNTHETIC_IMAGE_SHAPE, params, registries),
    numClasses: params.num_classes ?? SYNTHETIC_CLASSES,
  }),
  async create(params, ctx: DatasetContext) {
    const [height, width, channels] = params.image_shape ?? SYNTHETIC_IMAGE_SHAPE;
    const base = { height, width, channels, classes: params.num_classes ?? SYNTHETIC_CLASSES, noise: params.noise ?? 40, seed: ctx.seed };
    const trainSpec = { ...base, count: params.train_size ?? 1000 };
    const train = syntheticImages(trainSpec, 1);
    const test = syntheticImages({ ...base, count: params.test_size ?? 200 }, 2);
    return createPipeline({
      info: { name: 'synthetic', numClasses: base.classes, fingerprint: syntheticFingerprint(trainSpec) },
      splits: { ...splitTraining(train, params, ctx.seed), test: { set: test, indices: range(0, test.count) } },
      adaptOn: train,
      transforms: buildTransforms(params, ctx),
      log: ctx.log,
      ...(params.workers !== undefined ? { workers: params.workers } : {}),
    });
  },
};

export const datasetEntries: DatasetEntry[] = [cifar100Entry, cifar10Entry, syntheticEntry, imageFolderEntry, manifestEntry, mnistEntry, fashionMnistEntry];
