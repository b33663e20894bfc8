/**
 * `image_folder` and `manifest`: a user's own labelled images. Both list files first (every
 * mistake a located error before anything is decoded), then decode through the shard cache
 * (cache.ts) into the same uint8 ImageSet the CIFAR datasets use, so transforms, batching and
 * the pipeline are shared.
 */
import { existsSync, statSync } from 'node:fs';
import { ConfigError, describeValue, type Split, type Dataset, type DatasetContext, type DatasetEntry, type DataShape, type DataShapeContext, type JsonSchema } from '@tessera/core/registry';
import { ImageDecodeError, type Interpolation } from '../../image/decode.ts';
import { createPipeline, type SplitStream } from '../../pipeline.ts';
import { deriveSeed, Rng, SEED_STREAMS } from '@tessera/core/random';
import { range, type ImageSet, type SplitView } from '../../store.ts';
import { defaultCacheDir } from '../cifar.ts';
import { buildTransforms, commonSchema, configRelativePath, paramError, splitTraining, transformedShape, type CommonParams } from '../common.ts';
import { decodeFileList, type DecodeSettings, type DecodedImages } from './cache.ts';
import { ShardReader } from './stream.ts';
import { folderClasses, manifestClasses, scanImageFolder, scanManifest, type FileList, type ScanContext, type ScannedImages } from './scan.ts';

type ColorMode = 'rgb' | 'grayscale' | 'rgba';

interface ImageParams extends CommonParams {
  image_size: [number, number];
  color_mode?: ColorMode;
  classes?: string[];
  crop_to_aspect_ratio?: boolean;
  pad_to_aspect_ratio?: boolean;
  interpolation?: Interpolation;
  on_bad_image?: 'skip' | 'error';
  ignore_unknown_files?: boolean;
  cache?: boolean;
  cache_dir?: string;
  decode_workers?: number;
  max_memory_mb?: number;
  shuffle_buffer?: number;
}

interface ImageFolderParams extends ImageParams {
  dir: string;
}

interface ManifestParams extends ImageParams {
  manifest: string;
}

const imageSchema: Record<string, JsonSchema> = {
  image_size: {
    type: 'array',
    items: { type: 'integer', minimum: 1 },
    minItems: 2,
    maxItems: 2,
    description: '[height, width] every image is resized to',
  },
  color_mode: { enum: ['rgb', 'grayscale', 'rgba'], default: 'rgb', description: 'channels the images are converted to (3, 1 or 4), as Keras' },
  classes: {
    type: 'array',
    items: { type: 'string' },
    minItems: 2,
    uniqueItems: true,
    description: 'class names in label order; default: the sorted class folder names (manifest: the sorted label names)',
  },
  crop_to_aspect_ratio: { type: 'boolean', default: false, description: 'resize keeping the aspect ratio, cropping the centre (Keras)' },
  pad_to_aspect_ratio: { type: 'boolean', default: false, description: 'resize keeping the aspect ratio, padding with black (Keras)' },
  interpolation: { enum: ['bilinear', 'nearest', 'bicubic', 'lanczos3'], default: 'bilinear', description: 'resize filter (antialiased when shrinking)' },
  on_bad_image: {
    enum: ['skip', 'error'],
    default: 'skip',
    description: 'a corrupt or truncated image: skip it with a warning (the count is recorded in the run), or stop with an error',
  },
  ignore_unknown_files: { type: 'boolean', default: false, description: 'skip files that are not images instead of failing' },
  cache: { type: 'boolean', default: true, description: 'keep decoded images in the cache, so later epochs and runs never decode again' },
  cache_dir: { type: 'string', description: 'decoded image cache; default: TESSERA_CACHE or ~/.cache/tessera' },
  decode_workers: { type: 'integer', minimum: 1, description: 'images decoded at once in the first pass (on libuv\'s thread pool, UV_THREADPOOL_SIZE); default: twice the number of cores' },
  max_memory_mb: {
    type: 'number',
    minimum: 0,
    default: 4096,
    description: 'a split whose decoded images exceed this is streamed from the cache shards instead of held in memory (needs cache: true)',
  },
  shuffle_buffer: {
    type: 'integer',
    minimum: 1,
    default: 10000,
    description: 'when streaming: images in the seeded shuffle buffer (shards are also read in a seeded order); memory holds about shuffle_buffer / images-per-shard + 2 shards of 64 MiB',
  },
  ...commonSchema,
  validation_shuffle: {
    type: 'boolean',
    default: true,
    description: 'hold out a random (seeded) subset for validation_split; false: the last files, which are the last classes (files are in class order)',
  },
};

const CHANNELS: Record<ColorMode, 1 | 3 | 4> = { rgb: 3, grayscale: 1, rgba: 4 };

function settingsOf(params: ImageParams, ctx: DatasetContext): DecodeSettings {
  if (params.crop_to_aspect_ratio && params.pad_to_aspect_ratio) {
    throw paramError(ctx, ['pad_to_aspect_ratio'], { message: 'give crop_to_aspect_ratio or pad_to_aspect_ratio, not both' });
  }
  const [height, width] = params.image_size;
  return {
    height,
    width,
    channels: CHANNELS[params.color_mode ?? 'rgb'],
    fit: params.crop_to_aspect_ratio ? 'cover' : params.pad_to_aspect_ratio ? 'contain' : 'fill',
    interpolation: params.interpolation ?? 'bilinear',
  };
}

/** Decodes each split's list; a bad image under on_bad_image: error is a located error. */
async function decodeSplits(
  scanned: ScannedImages,
  params: ImageParams,
  ctx: DatasetContext,
  sourceKey: string,
  sourceFile: string,
): Promise<{ train: DecodedImages; validation?: DecodedImages; test?: DecodedImages; cacheDir: string }> {
  const settings = settingsOf(params, ctx);
  const cacheDir = params.cache_dir !== undefined ? configRelativePath(['data', 'cache_dir'], params.cache_dir, ctx) : defaultCacheDir();
  const budget = (params.max_memory_mb ?? 4096) * 2 ** 20;
  const imageBytes = settings.height * settings.width * settings.channels;
  const decode = async (list: FileList, name: string) => {
    const inMemory = list.files.length * imageBytes <= budget;
    if (!inMemory && params.cache === false) {
      throw paramError(ctx, ['cache'], { message: `the ${name} images take ${Math.ceil((list.files.length * imageBytes) / 2 ** 20)} MiB decoded, more than max_memory_mb (${params.max_memory_mb ?? 4096}); streaming them needs cache: true` });
    }
    try {
      return await decodeFileList(list, settings, {
        inMemory,
        ...(params.cache !== false ? { cacheDir } : {}),
        onBadImage: params.on_bad_image ?? 'skip',
        ...(params.decode_workers ? { concurrency: params.decode_workers } : {}),
        log: ctx.log,
        name,
      });
    } catch (cause) {
      if (!(cause instanceof ImageDecodeError)) throw cause;
      const at = list.sources?.[list.files.indexOf(cause.file)];
      throw new ConfigError(
        {
          path: ['data', sourceKey],
          message: `${cause.message} (on_bad_image: error)`,
          hint: 'remove or replace the file, or set data.on_bad_image: skip to leave bad images out with a warning',
          ...(at ? { location: at } : ctx.locate?.(['data', sourceKey]) ? { location: ctx.locate(['data', sourceKey])! } : {}),
        },
        { cause },
      );
    }
  };
  const train = await decode(scanned.train, 'train');
  const validation = scanned.validation ? await decode(scanned.validation, 'validation') : undefined;
  const test = scanned.test ? await decode(scanned.test, 'test') : undefined;
  for (const [split, decoded] of Object.entries({ train, validation, test })) {
    if (decoded && decoded.count === 0) {
      throw paramError(ctx, [sourceKey], { message: `no ${split} image of ${sourceFile} could be decoded (${decoded.skipped.length} bad files, e.g. ${decoded.skipped[0]?.file})` });
    }
  }
  return { train, ...(validation ? { validation } : {}), ...(test ? { test } : {}), cacheDir };
}

const whole = (set: ImageSet): SplitView => ({ set, indices: range(0, set.count) });

/** Images that adaptive transforms (normalize) learn from when the training split streams. */
const STREAM_ADAPT_SAMPLE = 10000;

function streamOf(decoded: DecodedImages, buffer: number, log: (m: string) => void, name: string): { stream: SplitStream; reader: ShardReader } {
  const reader = new ShardReader(decoded.shards!);
  const shardMiB = Math.max(...decoded.shards!.shards.map((s) => s.count)) * reader.imageBytes;
  log(
    `${name}: ${decoded.count} images streamed from ${decoded.shards!.shards.length} shard(s) (more than max_memory_mb decoded): ` +
      `about ${Math.ceil((buffer * reader.imageBytes + shardMiB) / 2 ** 20)} MiB in memory (a shuffle buffer of ${buffer} images + one shard)`,
  );
  const stream: SplitStream = {
    count: decoded.count,
    open: (training, seed, epoch) => reader.openEpoch(training ? { rng: new Rng(deriveSeed(seed, epoch, SEED_STREAMS.imageStreamShuffle)), buffer } : undefined),
  };
  return { stream, reader };
}

async function createImageDataset(
  type: string,
  scanned: ScannedImages,
  params: ImageParams,
  ctx: DatasetContext,
  sourceKey: string,
  source: string,
): Promise<Dataset> {
  if (scanned.validation && (params.validation_split ?? 0) > 0) {
    throw paramError(ctx, ['validation_split'], { message: `${source} has its own validation images; remove validation_split` });
  }
  const decoded = await decodeSplits(scanned, params, ctx, sourceKey, source);
  const { train, validation, test } = decoded;
  const skipped = [train, validation, test].reduce((n, d) => n + (d?.skipped.length ?? 0), 0);
  const counts = `${train.count} training${validation ? `, ${validation.count} validation` : ''}${test ? `, ${test.count} test` : ''}`;
  ctx.log(
    `${type}: ${counts} images in ${scanned.classNames.length} classes from ${source}${train.fromCache ? ' (decoded cache)' : ''}` +
      (skipped > 0 ? `; ${skipped} unreadable image(s) skipped` : ''),
  );
  const buffer = params.shuffle_buffer ?? 10000;
  const streams: Partial<Record<Split, SplitStream>> = {};
  const views: Partial<Record<Split, SplitView>> = {};
  let adaptOn = train.set;
  for (const [split, d] of [['train', train], ['validation', validation], ['test', test]] as const) {
    if (!d) continue;
    if (d.set) {
      views[split] = whole(d.set);
      continue;
    }
    const { stream, reader } = streamOf(d, buffer, ctx.log, split);
    streams[split] = stream;
    if (split === 'train') {
      adaptOn = reader.sample(STREAM_ADAPT_SAMPLE);
      if (params.transforms?.some((t) => t.type === 'normalize')) ctx.log(`normalize learns its statistics from the first ${adaptOn.count} training images (the split streams)`);
    }
  }
  const placeholder = { set: adaptOn!, indices: new Int32Array(0) };
  let trainView = views.train ?? placeholder;
  let validationView = views.validation ?? placeholder;
  if (!validation && (params.validation_split ?? 0) > 0) {
    if (streams.train) {
      throw paramError(ctx, ['validation_split'], {
        message: 'the training images are streamed (more than max_memory_mb decoded), and a streamed split is not cut by validation_split',
        hint: `put validation images in ${sourceKey === 'dir' ? 'a validation/ folder' : 'rows with split: validation'}, or raise max_memory_mb`,
      });
    }
    ({ train: trainView, validation: validationView } = splitTraining(train.set!, { ...params, validation_shuffle: params.validation_shuffle ?? true }, ctx.seed));
  }
  const fingerprint = [train, validation, test].map((d) => d?.digest ?? '-').join(':');
  return createPipeline({
    info: {
      name: type,
      numClasses: scanned.classNames.length,
      labelNames: scanned.classNames,
      fingerprint,
      stats: { skipped_images: skipped },
    },
    splits: { train: trainView, validation: validationView, test: views.test ?? placeholder },
    ...(Object.keys(streams).length > 0 ? { streams } : {}),
    adaptOn: adaptOn!,
    transforms: buildTransforms(params, ctx),
    cacheDir: decoded.cacheDir,
    log: ctx.log,
    ...(params.workers !== undefined ? { workers: params.workers } : {}),
  });
}

function existingPath(ctx: Pick<DatasetContext, 'configDir' | 'locate'>, key: string, written: string, kind: 'dir' | 'file'): string {
  const path = configRelativePath(['data', key], written, ctx);
  const ok = existsSync(path) && (kind === 'dir' ? statSync(path).isDirectory() : statSync(path).isFile());
  if (!ok) {
    throw paramError(ctx, [key], {
      expected: kind === 'dir' ? 'a directory of class folders' : 'a CSV or JSONL manifest file',
      found: `${describeValue(written)} (${path} ${existsSync(path) ? `is not a ${kind === 'dir' ? 'directory' : 'file'}` : 'does not exist'})`,
    });
  }
  return path;
}

function scanContext(params: ImageParams, ctx: Pick<DatasetContext, 'locate'>, key: string): ScanContext {
  const location = ctx.locate?.(['data', key]);
  return {
    path: ['data', key],
    ...(location ? { location } : {}),
    ...(params.classes ? { classes: params.classes } : {}),
    ignoreUnknownFiles: params.ignore_unknown_files ?? false,
  };
}

/** The examples' shape from the params; the class count from `classes`, else the folder names or manifest labels (no image is read). */
function describeImages(params: ImageParams, ctx: DataShapeContext, classes: (where: Pick<DatasetContext, 'configDir' | 'locate'>) => string[]): DataShape {
  const [height, width] = params.image_size;
  const where = { configDir: ctx.configDir ?? process.cwd(), ...(ctx.locate ? { locate: ctx.locate } : {}) };
  return {
    inputShape: transformedShape([height, width, CHANNELS[params.color_mode ?? 'rgb']], params, ctx.registries),
    numClasses: params.classes?.length ?? classes(where).length,
  };
}

export const imageFolderEntry: DatasetEntry<ImageFolderParams> = {
  type: 'image_folder',
  description: 'Your own images, one folder per class: DIR/<class>/*.{jpg,png,webp,bmp,...}, optionally under DIR/train, DIR/validation, DIR/test',
  params: {
    properties: {
      dir: { type: 'string', description: 'the folder of class folders, relative to the experiment file' },
      ...imageSchema,
    },
    required: ['dir', 'image_size'],
    additionalProperties: false,
  },
  describe: (params, ctx) => describeImages(params, ctx, (where) => folderClasses(existingPath(where, 'dir', params.dir, 'dir'), scanContext(params, where, 'dir')).classNames),
  async create(params, ctx) {
    const dir = existingPath(ctx, 'dir', params.dir, 'dir');
    const scanned = scanImageFolder(dir, scanContext(params, ctx, 'dir'));
    return createImageDataset('image_folder', scanned, params, ctx, 'dir', dir);
  },
};

export const manifestEntry: DatasetEntry<ManifestParams> = {
  type: 'manifest',
  description: 'Your own images listed in a CSV (path,label[,split]) or JSONL file; paths relative to the file, labels names or integers',
  params: {
    properties: {
      manifest: { type: 'string', description: 'the CSV or JSONL (.jsonl) file, relative to the experiment file' },
      ...imageSchema,
    },
    required: ['manifest', 'image_size'],
    additionalProperties: false,
  },
  describe: (params, ctx) => describeImages(params, ctx, (where) => manifestClasses(existingPath(where, 'manifest', params.manifest, 'file'), scanContext(params, where, 'manifest'))),
  async create(params, ctx) {
    const file = existingPath(ctx, 'manifest', params.manifest, 'file');
    const scanned = scanManifest(file, scanContext(params, ctx, 'manifest'));
    return createImageDataset('manifest', scanned, params, ctx, 'manifest', file);
  },
};
