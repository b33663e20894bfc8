import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, pluginOf, type DatasetContext, type EntryConfig, type JsonSchema, type Registries } from '@tessera/core/registry';
import type { ConfiguredTransform } from '../pipeline.ts';
import { deriveSeed, Rng, SEED_STREAMS } from '@tessera/core/random';
import { range, type ImageSet, type SplitView } from '../store.ts';

/** Parameters every dataset shares: how to split and what to apply. */
export interface CommonParams {
  transforms?: EntryConfig[];
  validation_split?: number;
  validation_shuffle?: boolean;
  validation_from?: 'end' | 'start';
  workers?: number;
}

export const commonSchema: Record<string, JsonSchema> = {
  transforms: {
    type: 'array',
    items: { $ref: '#/$defs/transform' },
    default: [],
    description: 'preprocessing and augmentation steps, applied in order (random ones in training only)',
  },
  validation_split: {
    type: 'number',
    minimum: 0,
    exclusiveMaximum: 1,
    default: 0,
    description: 'fraction of the training examples held out for validation: the LAST ones, before any shuffle (Keras)',
  },
  validation_shuffle: {
    type: 'boolean',
    default: false,
    description: 'hold out a random (seeded by the run seed) subset instead of the last examples',
  },
  validation_from: {
    enum: ['end', 'start'],
    default: 'end',
    description: 'which end of the (unshuffled) training set validation_split holds out: the last examples (Keras\' validation_split) or the first (the ConvMixer example\'s x_train[:n])',
  },
  workers: {
    type: 'integer',
    minimum: 0,
    description:
      'worker threads that gather and augment batches off the training thread, prefetching ahead of it (0: on the training thread); ' +
      'default: none on the native backend (the transforms run on TensorFlow\'s own threads), else the cores left after training, at most 4 ' +
      '(env TESSERA_DATA_WORKERS). Same batches for any count >= 1',
  },
};

export function paramError(
  ctx: Pick<DatasetContext, 'locate'>,
  key: (string | number)[],
  init: { expected?: string; found?: string; message?: string; hint?: string },
  cause?: unknown,
): ConfigError {
  const path = ['data', ...key];
  return new ConfigError({ ...init, path, location: ctx.locate?.(path) }, cause === undefined ? undefined : { cause });
}

export function buildTransforms(params: CommonParams, ctx: DatasetContext): ConfiguredTransform[] {
  return (params.transforms ?? []).map(({ type, ...rest }, i) => {
    let entry;
    try {
      entry = ctx.registries.transforms.get(type);
    } catch (cause) {
      // The registry's message already lists the valid types with a did-you-mean.
      throw paramError(ctx, ['transforms', i, 'type'], { message: (cause as Error).message }, cause);
    }
    const plugin = pluginOf(entry);
    return { type, params: rest, transform: entry.create(rest), ...(plugin ? { plugin } : {}) };
  });
}

/** One example's shape as the model sees it: the source's shape through each transform's outputShape. */
export function transformedShape(raw: readonly number[], params: CommonParams, registries: Registries): number[] {
  return (params.transforms ?? []).reduce((shape, { type, ...rest }) => registries.transforms.get(type).create(rest).outputShape(shape), [...raw]);
}

/**
 * Which of `count` training examples are trained on and which are held out for validation: the
 * last fraction (Keras), the first, or a seeded random one. A function of (count, params, seed)
 * alone, so a split streamed from disk holds out exactly the examples an in-memory one does.
 */
export function splitIndices(count: number, params: CommonParams, seed: number): { train: Int32Array; validation: Int32Array } {
  const fraction = params.validation_split ?? 0;
  let indices = range(0, count);
  if (params.validation_shuffle && fraction > 0) indices = new Rng(deriveSeed(seed, SEED_STREAMS.split)).shuffle(indices);
  if (params.validation_from === 'start') {
    // x_train[:int(n * fraction)] held out, x_train[int(n * fraction):] trained on.
    const held = Math.floor(count * fraction);
    return { train: indices.slice(held), validation: indices.slice(0, held) };
  }
  // Keras: split_at = int(n * (1 - validation_split)).
  const splitAt = Math.floor(count * (1 - fraction));
  return { train: indices.slice(0, splitAt), validation: indices.slice(splitAt) };
}

/** Splits `train` into train/validation views (see splitIndices). */
export function splitTraining(train: ImageSet, params: CommonParams, seed: number): { train: SplitView; validation: SplitView } {
  const split = splitIndices(train.count, params, seed);
  return { train: { set: train, indices: split.train }, validation: { set: train, indices: split.validation } };
}

/** A path written in the config, absolute; a relative one is relative to the file that wrote it (a base file for `extends`). */
export function configRelativePath(path: (string | number)[], p: string, ctx: Pick<DatasetContext, 'configDir' | 'locate'>): string {
  if (isAbsolute(p)) return p;
  const written = ctx.locate?.(path)?.file;
  return resolve(written && !written.startsWith('--set ') ? dirname(resolve(written)) : ctx.configDir, p);
}

