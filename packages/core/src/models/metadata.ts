import { ConfigError } from '../errors.ts';
import { fingerprint } from '../random/fingerprint.ts';
import type { DatasetInfo, TransformState } from '../registry/kinds.ts';
import type { EntryConfig, ExperimentConfig } from '../schema/types.ts';

/* ------------------------------------------------------------------------------------------ *
 * What makes a TF.js LayersModel directory a usable Tessera model: everything `exp predict`,  *
 * `exp serve` and `exp evaluate` need besides topology and weights, stored in model.json's    *
 * `userDefinedMetadata.tessera` so the directory stays one self-contained, standard artifact. *
 * ------------------------------------------------------------------------------------------ */

/**
 * Version of the metadata layout. 1: the first round's `exp export` (no `format` field, no
 * classes); 2: adds format, classes, rawShape, configDigest, runId and which.
 */
export const MODEL_FORMAT = 2;

/** How a binary file of images is laid out: CIFAR records, `labelBytes` then the planes. */
export interface RecordFormat {
  labelBytes: number;
  /** Which label byte is the class the model predicts. */
  labelIndex: number;
}

/** What the model needs to know about its data at inference time. */
export interface ModelData {
  /** The dataset type (`cifar100`, `synthetic`, ...). */
  type: string;
  /** The experiment's transforms (the random ones are skipped at inference). */
  transforms: EntryConfig[];
  /** State the transforms learned from the training data (normalization statistics). */
  state: Record<string, TransformState>;
  numClasses: number;
  labelNames?: string[];
  records: RecordFormat;
}

/** Which weights a model directory holds. */
export type ModelWhich = 'final' | 'best' | 'init';

export interface ModelMetadata {
  format: number;
  experiment: string;
  /** The local run that trained it (absent for `exp export FILE --init`). */
  runId?: string;
  which: ModelWhich;
  /** The epoch whose weights these are (best: the best epoch; final: the last one). */
  epoch?: number;
  /** One raw image as the model's preprocessing expects it, [height, width, channels] uint8. */
  rawShape: number[];
  /** One example as the model sees it (after the deterministic transforms). */
  inputShape: number[];
  /** Class names, index = class id. */
  classes: string[];
  /** sha256 of the resolved config (12 hex digits): two models trained from one config share it. */
  configDigest: string;
  source: string;
  seed: number;
  /**
   * The plugin modules its layers and transforms come from (the project's and the experiment's,
   * absolute paths): predict, serve, evaluate and export load them before the model. Absent when
   * it needs none.
   */
  plugins?: string[];
  data: ModelData;
  config: ExperimentConfig;
}

/** The record layout of the dataset's own binary files (CIFAR-100: coarse then fine label). */
export function recordFormat(data: Record<string, unknown>): RecordFormat {
  if (data.type === 'cifar100') return { labelBytes: 2, labelIndex: data.label_mode === 'coarse' ? 0 : 1 };
  return { labelBytes: 1, labelIndex: 0 };
}

/**
 * A model's config digest: the first 12 hex digits of the one config fingerprint (sha256 of
 * key-sorted JSON, random/fingerprint.ts), so key order does not matter.
 */
export function configDigest(config: unknown): string {
  return fingerprint(config).slice(0, 12);
}

export interface ModelMetadataInit {
  config: ExperimentConfig;
  dataset: { info: DatasetInfo; state(): Record<string, unknown> };
  which: ModelWhich;
  source: string;
  seed: number;
  runId?: string;
  epoch?: number;
  /** Absolute paths of the plugins loaded for the experiment. */
  plugins?: readonly string[];
}

export function modelMetadata(init: ModelMetadataInit): ModelMetadata {
  const { config, dataset } = init;
  const { type, ...params } = config.data;
  const info = dataset.info;
  return {
    format: MODEL_FORMAT,
    experiment: config.name ?? 'model',
    ...(init.runId ? { runId: init.runId } : {}),
    which: init.which,
    ...(init.epoch !== undefined ? { epoch: init.epoch } : {}),
    rawShape: info.rawShape ?? info.inputShape,
    inputShape: info.inputShape,
    classes: info.labelNames ?? Array.from({ length: info.numClasses }, (_, i) => `class_${i}`),
    configDigest: configDigest(config),
    source: init.source,
    seed: init.seed,
    // Each module once (the project and the experiment may both list it).
    ...(init.plugins?.length ? { plugins: [...new Set(init.plugins)] } : {}),
    data: {
      type,
      transforms: (config.data.transforms ?? []) as ModelData['transforms'],
      state: dataset.state() as Record<string, TransformState>,
      numClasses: info.numClasses,
      ...(info.labelNames ? { labelNames: info.labelNames } : {}),
      records: recordFormat(params as Record<string, unknown>),
    },
    config,
  };
}

/**
 * Checks what a loaded model.json says about itself and names what is missing, so a model from
 * an older Tessera (or a plain TF.js model) fails with a reason, not deep inside predict.
 */
export function checkModelMetadata(metadata: Record<string, unknown>, where: string): ModelMetadata {
  if (Object.keys(metadata).length === 0) {
    throw new ConfigError({
      message: `${where}: model.json has no Tessera metadata (userDefinedMetadata.tessera); it is a plain TF.js model. Use a run's model (exp export RUN --out DIR) or a directory written by exp export`,
    });
  }
  const missing = ['rawShape', 'inputShape', 'classes', 'data', 'config'].filter((key) => metadata[key] === undefined);
  const data = metadata.data as Partial<ModelData> | undefined;
  if (data) for (const key of ['transforms', 'state', 'numClasses', 'records'] as const) if (data[key] === undefined) missing.push(`data.${key}`);
  if (missing.length > 0) {
    const version = metadata.format === undefined ? 'an older Tessera (metadata format 1)' : `metadata format ${String(metadata.format)}`;
    throw new ConfigError({
      message: `${where}: the model was written by ${version} and lacks ${missing.join(', ')}; export it again with this version (exp export RUN --out DIR)`,
    });
  }
  if (typeof metadata.format === 'number' && metadata.format > MODEL_FORMAT) {
    throw new ConfigError({ message: `${where}: metadata format ${metadata.format} is newer than this Tessera reads (${MODEL_FORMAT}); update Tessera` });
  }
  return metadata as unknown as ModelMetadata;
}
