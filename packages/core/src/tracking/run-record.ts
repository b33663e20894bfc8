import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { stringify } from 'yaml';
import { redactSecrets } from '../safety/redact.ts';
import { formatSummary, modelSummary } from '../graph/summary.ts';
import type { DatasetInfo, Split } from '../registry/kinds.ts';
import type { ExperimentConfig } from '../schema/types.ts';
import { collectProvenance, type Provenance } from './provenance.ts';
import type { ModelMetadata } from '../models/metadata.ts';
import { LOCAL_PARENT_TAG } from './sync.ts';
import { flattenParams, type DatasetInput, type ParamValue, type Tracker } from './tracker.ts';

/**
 * What every run records besides the engine's own metrics, in whichever stores the tracker
 * writes to: params (the flattened resolved config plus the usual short names), MLflow's
 * standard tags, the config and overrides as YAML, the model summary, the dataset, system
 * metrics per epoch, the best model so far, and learning-curve PNGs at the end.
 */

/** MLflow's rules for keys: letters, digits, `_ - . : /` and spaces, at most 250 characters. */
function safeKey(key: string): string {
  return key.replace(/[^/\p{L}\p{N}_.\- :]/gu, '_').slice(0, 250);
}

/** MLflow keeps at most 6000 characters of a param value. */
function safeValue(value: ParamValue): ParamValue {
  return typeof value === 'string' && value.length > 6000 ? `${value.slice(0, 5997)}...` : value;
}

/**
 * Params of a run, each value once: every leaf of the config as it ran (`effective`: defaults
 * filled, else the resolved config) by its dotted path (`train.optimizer.learning_rate`), an
 * entry of a list by its `name` when it has one (`model.layers.logits.units`, so inserting a layer
 * renames no other), plus `model_params` (the parameter count). The config's `backend` is
 * `backend_request`: `backend` is the one the run got (run.ts logs it with the seed).
 */
export function runParams(config: ExperimentConfig, model: { countParams(): number }): Record<string, ParamValue> {
  const { backend: requestedBackend, ...rest } = redactSecrets(config);
  const params: Record<string, ParamValue> = { ...flattenParams(rest, '', {}, { byName: true }), ...(requestedBackend ? { backend_request: requestedBackend } : {}) };
  params.model_params = model.countParams();
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [safeKey(key), safeValue(value)]));
}

/**
 * The comment block at the top of an experiment file (without the `yaml-language-server`
 * directive and the `# `), which says what the experiment is: MLflow shows it as the run's note.
 */
export function headerComment(text: string): string {
  const lines: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.startsWith('#')) break;
    if (/^#\s*yaml-language-server:/.test(line)) continue;
    lines.push(line.replace(/^# ?/, ''));
  }
  return lines.join('\n').trim();
}

/** Who runs, and the code's commit: MLflow's `mlflow.user` and `mlflow.source.git.commit`. */
export function userAndGitTags(cwd: string): Record<string, string> {
  const user = currentUser();
  const { gitCommit } = collectProvenance(cwd);
  return { ...(gitCommit ? { 'mlflow.source.git.commit': gitCommit } : {}), ...(user ? { 'mlflow.user': user } : {}) };
}

/** The OS user name (MLflow's `mlflow.user`), if it can be known. */
function currentUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME;
  }
}

export interface RunStartRecord {
  config: ExperimentConfig;
  /** The config with the schema's defaults filled in (effectiveConfig), for params; default `config`. */
  effective?: ExperimentConfig;
  /** The experiment file, or a description such as `<config object>`. */
  source: string;
  overrides: string[];
  model: tf.LayersModel;
  dataset: DatasetInfo;
  backend: string;
  provenance: Provenance;
  runName: string;
  /** A local run id this run belongs to (a sweep). */
  parentRunId?: string;
}

/** The tags a run starts with (MLflow's standard ones, the backend, the version, the config's own). */
export function runTags(record: RunStartRecord): Record<string, string> {
  let note = '';
  try {
    note = headerComment(readFileSync(record.source, 'utf8'));
  } catch {
    // A config object has no file, hence no header.
  }
  const user = currentUser();
  const version = record.provenance.packages['@tessera/core'];
  return {
    'mlflow.runName': record.runName,
    'mlflow.source.name': record.source,
    'mlflow.source.type': 'LOCAL',
    ...(record.provenance.gitCommit ? { 'mlflow.source.git.commit': record.provenance.gitCommit } : {}),
    ...(user ? { 'mlflow.user': user } : {}),
    ...(note ? { 'mlflow.note.content': note } : {}),
    'tessera.backend': record.backend,
    ...(version ? { 'tessera.version': version } : {}),
    ...(record.parentRunId ? { [LOCAL_PARENT_TAG]: record.parentRunId } : {}),
    ...record.config.tracking?.tags,
  };
}

/**
 * The run's datasets as autolog records them: one input per split the run uses (train,
 * validation, test), each with its own digest. A split is its source data (the dataset's
 * fingerprint) and what selects it from the source (its name and size, and the data section:
 * validation_split, seed, ...), so the digest hashes those: two runs on the same examples share
 * it, and a change of split or data shows as a new dataset in the UI.
 */
export function datasetInputs(dataset: DatasetInfo, config: ExperimentConfig): DatasetInput[] {
  const dataDir = config.data.dir;
  const splits: Split[] = ['train', 'validation', 'test'];
  return splits
    .filter((split) => dataset.counts[split] > 0)
    .map((split) => ({
      name: dataset.name,
      digest: createHash('sha256')
        .update(JSON.stringify([dataset.fingerprint, split, dataset.counts[split], config.data, config.seed ?? 0]))
        .digest('hex')
        .slice(0, 16),
      source: typeof dataDir === 'string' ? dataDir : dataset.name,
      context: split,
      profile: { num_rows: dataset.counts[split], input_shape: dataset.inputShape, num_classes: dataset.numClasses, source_fingerprint: dataset.fingerprint },
    }));
}

/** Params, tags, the datasets and the descriptive artifacts of a new run. */
export async function recordRunStart(tracker: Tracker, record: RunStartRecord): Promise<void> {
  const config = redactSecrets(record.config);
  await tracker.logParams(runParams(record.effective ?? config, record.model));
  await tracker.setTags(runTags(record));
  await tracker.logInputs?.(datasetInputs(record.dataset, config));
  if (record.dataset.stats) {
    await tracker.logParams(Object.fromEntries(Object.entries(record.dataset.stats).map(([k, v]) => [`dataset.${k}`, v])));
  }
  if (record.dataset.labelNames) await tracker.logArtifact('class_names.json', { bytes: JSON.stringify(record.dataset.labelNames) });
  await tracker.logArtifact('config.yaml', { bytes: stringify(config) });
  await tracker.logArtifact('overrides.yaml', { bytes: stringify(redactSecrets(record.overrides)) });
  await tracker.logArtifact('model_summary.txt', { bytes: `${formatSummary(modelSummary(record.model))}\n` });
}

/**
 * The model in the TF.js layers format: model.json (topology + manifest, and Tessera's metadata
 * under `userDefinedMetadata.tessera` when given) and weights.bin.
 */
export async function serializeModel(model: tf.LayersModel, metadata?: ModelMetadata): Promise<{ json: string; weights: Uint8Array }> {
  let files: { json: string; weights: Uint8Array } | undefined;
  if (metadata) model.setUserDefinedMetadata({ tessera: metadata });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const buffers = ([] as ArrayBuffer[]).concat((artifacts.weightData ?? []) as ArrayBuffer | ArrayBuffer[]);
      files = {
        json: JSON.stringify({
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
          convertedBy: null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
          ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
        }),
        weights: new Uint8Array(tf.io.concatenateArrayBuffers(buffers)),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return files!;
}

export interface EpochRecorderOptions {
  /** Epochs already recorded (a resumed run), so that "best" continues from them. */
  history?: readonly Record<string, unknown>[];
  /** Lower is better; default val_loss when the epoch has it, else loss. */
  monitor?: string;
  /** A metric to log before the others in each epoch's record (a sweep trial's objective: OBJECTIVE_TAG). */
  first?: string;
  /** Where a note goes when the model cannot be serialized (best_model/ is then skipped). */
  log?: (message: string) => void;
  /** What best_model/ records about itself (classes, preprocessing, run id) for the given epoch. */
  metadata?: (epoch: number) => ModelMetadata;
}

/**
 * The engine's per-epoch hook: the epoch's metrics (step = epoch), and the
 * model as `best_model/` whenever the monitored loss improves (tags `tessera.best_epoch`,
 * `tessera.best_value`).
 */
export class EpochRecorder {
  #best: number | undefined;
  #unserializable = false;

  constructor(
    readonly tracker: Tracker,
    readonly model: tf.LayersModel,
    readonly options: EpochRecorderOptions = {},
  ) {
    for (const logs of options.history ?? []) this.#improves(logs);
  }

  #monitored(logs: Record<string, unknown>): number | undefined {
    const key = this.options.monitor ?? ('val_loss' in logs ? 'val_loss' : 'loss');
    const value = logs[key];
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  }

  #improves(logs: Record<string, unknown>): boolean {
    const value = this.#monitored(logs);
    if (value === undefined || (this.#best !== undefined && value >= this.#best)) return false;
    this.#best = value;
    return true;
  }

  async epochEnd(epoch: number, logs: Record<string, number>): Promise<void> {
    const first = this.options.first;
    await this.tracker.logMetrics(first !== undefined && first in logs ? { [first]: logs[first]!, ...logs } : logs, epoch);
    if (!this.#improves(logs) || this.#unserializable) return;
    let files;
    try {
      files = await serializeModel(this.model, this.options.metadata?.(epoch));
    } catch (error) {
      // A layer without serialization support must not cost the run: the checkpoint has the weights.
      this.#unserializable = true;
      this.options.log?.(`note: no best_model/ artifact: the model cannot be saved in the TF.js format (${(error as Error).message})`);
      return;
    }
    await this.tracker.logArtifact('best_model/model.json', { bytes: files.json });
    await this.tracker.logArtifact('best_model/weights.bin', { bytes: files.weights });
    await this.tracker.setTags({ 'tessera.best_epoch': String(epoch), 'tessera.best_value': String(this.#best) });
  }
}

/** Learning curves of the whole run (`plots/loss.png`, `plots/accuracy.png`). */
export async function recordRunEnd(tracker: Tracker, history: Record<string, number>[]): Promise<void> {
  // The optional entry point `@tessera/core/plots`, loaded here only, so that importing core
  // (a program, every `exp` command) never loads the plotting code.
  const { learningCurveArtifacts } = await import('./plots.ts');
  for (const [path, png] of await learningCurveArtifacts(history)) await tracker.logArtifact(path, { bytes: png });
}
