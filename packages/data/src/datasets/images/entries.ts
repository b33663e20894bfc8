/**
 * `image_folder` and `manifest`: a user's own labelled images. Both list files first (every
 * mistake a located error before anything is decoded), then decode through the shard cache
 * (cache.ts) into the same uint8 ImageSet the CIFAR datasets use, so transforms, batching and
 * the pipeline are shared.
 */
import { existsSync, statSync } from 'node:fs';
import { cacheRoot, ConfigError, describeValue, type RawImages, type Split, type Dataset, type DatasetContext, type DatasetEntry, type DataShape, type DataShapeContext, type JsonSchema } from '@tessera/core/registry';
import { ImageDecodeError, type Interpolation } from '../../image/decode.ts';
import { createPipeline, type ChunkedImages, type SplitStream } from '../../pipeline.ts';
import { deriveSeed, Rng, SEED_STREAMS } from '@tessera/core/random';
import { range, type ImageSet, type SplitView } from '../../store.ts';
import { buildTransforms, commonSchema, configRelativePath, paramError, splitIndices, splitTraining, transformedShape, type CommonParams } from '../common.ts';
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
  decode_workers: { type: 'integer', minimum: 1, description: 'threads that decode in the first pass: the main thread and decode_workers - 1 decode workers; default: one per core (the main thread alone below 4,096 images)' },
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
  const cacheDir = params.cache_dir !== undefined ? configRelativePath(['data', 'cache_dir'], params.cache_dir, ctx) : cacheRoot();
  const imageBytes = settings.height * settings.width * settings.channels;
  const decode = async (list: FileList, name: string) => {
    const inMemory = fitsInMemory(list, params, settings);
    if (!inMemory && params.cache === false) {
      throw paramError(ctx, ['cache'], { message: `the ${name} images take ${Math.ceil((list.files.length * imageBytes) / 2 ** 20)} MiB decoded, more than max_memory_mb (${params.max_memory_mb ?? 4096}); streaming them needs cache: true` });
    }
    try {
      return await decodeFileList(list, settings, {
        inMemory,
        ...(params.cache !== false ? { cacheDir } : {}),
        onBadImage: params.on_bad_image ?? 'skip',
        ...(params.decode_workers ? { threads: params.decode_workers } : {}),
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

/**
 * A split streamed from its shards: training epochs through the seeded shuffle buffer, leaving
 * out the images marked in `heldOut` (validation_split); evaluation in order.
 */
function streamOf(reader: ShardReader, buffer: number, log: (m: string) => void, name: string, heldOut?: { mask: Uint8Array; count: number }): SplitStream {
  const shardBytes = Math.max(...reader.index.shards.map((s) => s.count)) * reader.imageBytes;
  const count = reader.count - (heldOut?.count ?? 0);
  log(
    `${name}: ${heldOut ? `${count} of the ${reader.count}` : reader.count} images streamed from ${reader.index.shards.length} shard(s) (more than max_memory_mb decoded): ` +
      `about ${Math.ceil((buffer * reader.imageBytes + shardBytes) / 2 ** 20)} MiB in memory (a shuffle buffer of ${buffer} images + one shard)` +
      (heldOut ? `; the ${heldOut.count} held out for validation are read one batch at a time` : ''),
  );
  return {
    count,
    open: (training, seed, epoch) =>
      reader.openEpoch(training ? { rng: new Rng(deriveSeed(seed, epoch, SEED_STREAMS.imageStreamShuffle)), buffer } : undefined, heldOut?.mask),
  };
}

/** Whether a list's decoded images fit in max_memory_mb (else the split streams from the cache). */
function fitsInMemory(list: FileList, params: ImageParams, settings: DecodeSettings): boolean {
  return list.files.length * settings.height * settings.width * settings.channels <= (params.max_memory_mb ?? 4096) * 2 ** 20;
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
  const transforms = buildTransforms(params, ctx);
  const settings = settingsOf(params, ctx);
  if (!fitsInMemory(scanned.train, params, settings)) {
    // Found now, not after an hour of decoding.
    transforms.forEach(({ type: t, transform }, i) => {
      if (transform.adapt && !transform.adaptChunks) {
        throw paramError(ctx, ['transforms', i, 'type'], {
          message: `${t} learns from the training images, which are streamed here (more than max_memory_mb decoded), and it cannot learn from a stream (it has no adaptChunks())`,
          hint: 'raise max_memory_mb so that the training images are held in memory, or implement adaptChunks in the transform',
        });
      }
    });
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
  const { height, width, channels } = settings;
  const none: ImageSet = { bytes: new Uint8Array(0), labels: new Uint16Array(0), count: 0, height, width, channels, offset: 0, stride: height * width * channels };
  const placeholder: SplitView = { set: none, indices: new Int32Array(0) };
  const splits: Record<Split, SplitView> = { train: placeholder, validation: placeholder, test: placeholder };
  const streams: Partial<Record<Split, SplitStream>> = {};
  const cut = !validation && (params.validation_split ?? 0) > 0;
  const splitParams = { ...params, validation_shuffle: params.validation_shuffle ?? true };
  let adaptOn: RawImages | ChunkedImages;
  if (train.set) {
    adaptOn = train.set;
    if (cut) Object.assign(splits, splitTraining(train.set, splitParams, ctx.seed));
    else splits.train = whole(train.set);
  } else {
    const reader = new ShardReader(train.shards!);
    adaptOn = { count: train.count, height, width, channels, chunks: () => reader.chunks() };
    if (cut) {
      // The same held-out images as in memory (splitIndices depends on the count and seed
      // alone); validation reads them in the same order, training skips them.
      const held = splitIndices(train.count, splitParams, ctx.seed).validation;
      const mask = new Uint8Array(train.count);
      for (const i of held) mask[i] = 1;
      streams.train = streamOf(reader, buffer, ctx.log, 'train', { mask, count: held.length });
      streams.validation = { count: held.length, open: () => reader.openSubset(held) };
    } else streams.train = streamOf(reader, buffer, ctx.log, 'train');
  }
  for (const [split, d] of [['validation', validation], ['test', test]] as const) {
    if (!d) continue;
    if (d.set) splits[split] = whole(d.set);
    else streams[split] = streamOf(new ShardReader(d.shards!), buffer, ctx.log, split);
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
    splits,
    ...(Object.keys(streams).length > 0 ? { streams } : {}),
    adaptOn,
    transforms,
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
