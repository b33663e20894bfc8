import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoggedModel, Metric, MlflowClient } from '@tessera/mlflow';
import { stringify } from 'yaml';
import { ConfigError } from '../errors.ts';
import { MODEL_FILE } from '../graph/io.ts';
import { readMetrics } from '../tracking/local-store.ts';
import type { ModelMetadata } from './metadata.ts';
import { RUN_MODEL_PATHS, type WhichModel } from './resolve.ts';

/* ------------------------------------------------------------------------------------------ *
 * A run's models as MLflow 3 LoggedModels: their own artifacts (model.json, weights.bin and   *
 * an MLmodel file declaring the `tessera` flavor), linked to the run and to its metrics as    *
 * they were at the model's epoch. One place logs them, whether MLflow was up during the run   *
 * (the live tracker), came back later (exp sync, the tracker's catch-up) or is asked by       *
 * exp register: ensureRunLoggedModels, which finds what the run already has first.            *
 * (Apart from models/mlflow.ts because tracking/sync.ts uses it, and mlflow.ts uses sync.)    *
 * ------------------------------------------------------------------------------------------ */

/** The MLflow run tags that name the run's LoggedModels: the final one and, when it differs, the best epoch's. */
export const LOGGED_MODEL_TAGS: Readonly<Record<WhichModel, string>> = { final: 'tessera.model_id', best: 'tessera.best_model_id' };
export const LOGGED_MODEL_TAG = LOGGED_MODEL_TAGS.final;
/** The LoggedModels' names (as the run's artifact folders): the UI lists both models of a run by them. */
export const LOGGED_MODEL_NAMES: Readonly<Record<WhichModel, string>> = RUN_MODEL_PATHS;
export const FLAVOR = 'tessera';

/** The MLmodel file: MLflow's model descriptor, with the `tessera` flavor and an input/output signature. */
export function mlmodelFile(metadata: ModelMetadata, ids: { modelId: string; runId?: string; artifactPath?: string }, files: string[]): string {
  const [height, width, channels] = metadata.rawShape;
  return stringify({
    artifact_path: ids.artifactPath ?? 'model',
    model_id: ids.modelId,
    ...(ids.runId ? { run_id: ids.runId } : {}),
    utc_time_created: new Date().toISOString().replace('T', ' ').replace('Z', ''),
    flavors: {
      [FLAVOR]: {
        loader: 'exp predict models:/NAME/VERSION (or tf.loadLayersModel on model_path after importing @tessera/models)',
        format: 'tfjs-layers-model',
        model_path: MODEL_FILE,
        files,
        metadata_format: metadata.format,
        raw_input_shape: metadata.rawShape,
        input_shape: metadata.inputShape,
        classes: metadata.classes,
        config_digest: metadata.configDigest,
        tessera_run_id: metadata.runId ?? null,
        which: metadata.which,
      },
    },
    signature: {
      inputs: JSON.stringify([{ type: 'tensor', 'tensor-spec': { dtype: 'uint8', shape: [-1, height, width, channels] } }]),
      outputs: JSON.stringify([{ type: 'tensor', 'tensor-spec': { dtype: 'float32', shape: [-1, metadata.classes.length] } }]),
    },
  });
}

export interface LogLoggedModelOptions {
  client: MlflowClient;
  experimentId: string;
  /** The MLflow run that produced the model. */
  runId: string;
  name: string;
  /** model.json, weights.bin, ... by file name. */
  files: Map<string, Uint8Array | string>;
  metadata: ModelMetadata;
  /**
   * The run's metrics to link to the model (as MLflow holds them at the model's epoch).
   * They are logged again with the model's id and their own key, step, timestamp and value:
   * MLflow keeps one row per (key, timestamp, step, value) in the run's history, so the run's
   * curves do not change, and the model's page shows them.
   */
  metrics?: Metric[];
  step?: number;
  /** A LoggedModel of this run left unfinished (an upload cut short): completed instead of creating another. */
  existing?: LoggedModel;
}

/** Creates the LoggedModel, uploads its files and MLmodel, links it to the run and its metrics, marks it READY. */
export async function logLoggedModel(options: LogLoggedModelOptions): Promise<LoggedModel> {
  const { client, metadata } = options;
  const model = options.existing ?? (await client.createLoggedModel({
    experimentId: options.experimentId,
    name: options.name,
    modelType: FLAVOR,
    sourceRunId: options.runId,
    params: { experiment: metadata.experiment, which: metadata.which, classes: metadata.classes.length, input_shape: JSON.stringify(metadata.rawShape) },
    tags: {
      'tessera.config_digest': metadata.configDigest,
      'tessera.which': metadata.which,
      'tessera.epoch': String(metadata.epoch ?? 0),
      ...(metadata.runId ? { 'tessera.run_id': metadata.runId } : {}),
    },
  }));
  try {
    for (const [path, content] of options.files) await client.uploadLoggedModelArtifact(model.modelId, path, content);
    await client.uploadLoggedModelArtifact(model.modelId, 'MLmodel', mlmodelFile(metadata, { modelId: model.modelId, runId: options.runId }, [...options.files.keys()]));
  } catch (error) {
    await client.finalizeLoggedModel(model.modelId, 'LOGGED_MODEL_UPLOAD_FAILED').catch(() => undefined);
    throw error;
  }
  const step = options.step ?? 0;
  const metrics = (options.metrics ?? []).filter((m) => !m.key.startsWith('system/'));
  if (metrics.length > 0) {
    await client.logBatch(options.runId, { metrics: metrics.map((m) => ({ key: m.key, value: m.value, step: m.step, timestamp: m.timestamp, modelId: model.modelId })) });
  }
  await client.logOutputs(options.runId, [{ modelId: model.modelId, step }]);
  return client.finalizeLoggedModel(model.modelId);
}

/** Reads a local model directory's files (model.json and the weights its manifest names). */
export async function modelDirFiles(dir: string): Promise<{ files: Map<string, Uint8Array>; metadata: ModelMetadata }> {
  const json = await readFile(join(dir, MODEL_FILE));
  const parsed = JSON.parse(json.toString('utf8')) as { weightsManifest?: { paths: string[] }[]; userDefinedMetadata?: { tessera?: ModelMetadata } };
  const files = new Map<string, Uint8Array>([[MODEL_FILE, json]]);
  for (const path of (parsed.weightsManifest ?? []).flatMap((g) => g.paths)) files.set(path, await readFile(join(dir, path)));
  const metadata = parsed.userDefinedMetadata?.tessera;
  if (!metadata?.classes) throw new ConfigError({ message: `${dir}: the model has no Tessera metadata; it was saved by an older Tessera (train it again, or export it with exp export)` });
  return { files, metadata };
}

/** The metadata of a local model directory, or undefined without one. */
async function readModelMetadata(dir: string): Promise<ModelMetadata | undefined> {
  const json = await readFile(join(dir, MODEL_FILE), 'utf8').catch(() => undefined);
  if (json === undefined) return undefined;
  return (JSON.parse(json) as { userDefinedMetadata?: { tessera?: ModelMetadata } }).userDefinedMetadata?.tessera;
}

/**
 * The models of a local run that get a LoggedModel: the final one, and the best one when it is
 * from another epoch (or the run has no final model); a best model equal to the final one is the
 * final one's LoggedModel (`best` then names `final`).
 */
export async function runModelsToLog(runDir: string): Promise<{ log: WhichModel[]; bestIsFinal: boolean }> {
  // A model saved by an older Tessera (no metadata) cannot be described by an MLmodel file: it is
  // left out here (exp sync still sends its files as run artifacts), and exp register names what it lacks.
  const usable = async (which: WhichModel) => {
    const metadata = await readModelMetadata(join(runDir, 'artifacts', RUN_MODEL_PATHS[which]));
    return metadata?.classes ? metadata : undefined;
  };
  const final = await usable('final');
  const best = await usable('best');
  if (!final) return { log: best ? ['best'] : [], bestIsFinal: false };
  const bestIsFinal = !best || best.epoch === final.epoch;
  return { log: bestIsFinal ? ['final'] : ['final', 'best'], bestIsFinal };
}

/**
 * The run's metrics as they were at `epoch`, as MLflow holds them: per key of the run's per-epoch
 * metrics (not system/ or step/ metrics, which count other steps, nor eval_* added after the run),
 * the value at the last step up to `epoch`, with MLflow's own timestamp, so that linking them to
 * the model adds no row to the run's history.
 */
async function metricsAtEpoch(client: MlflowClient, runDir: string, runId: string, epoch: number): Promise<Metric[]> {
  const keys = new Set((await readMetrics(runDir)).flatMap((record) => Object.keys(record)));
  const metrics: Metric[] = [];
  for (const key of keys) {
    if (key === 'step' || key === 'time' || key.startsWith('system/') || key.startsWith('step/') || key.startsWith('eval_')) continue;
    let at: Metric | undefined;
    for (const m of await client.getMetricHistory(runId, key)) {
      if (m.step <= epoch && (!at || m.step > at.step || (m.step === at.step && m.timestamp >= at.timestamp))) at = m;
    }
    if (at) metrics.push(at);
  }
  return metrics;
}

export interface EnsureLoggedModelsOptions {
  client: MlflowClient;
  /** The MLflow run the local run was sent to (its metrics there are linked to the models). */
  runId: string;
  experimentId: string;
  log?: (message: string) => void;
}

/** The run's LoggedModel ids by model, and how many this call created or completed. */
export interface RunLoggedModels {
  ids: Partial<Record<WhichModel, string>>;
  created: number;
}

/**
 * Makes sure the MLflow run has exactly one READY LoggedModel per model of the local run in
 * `runDir` (see runModelsToLog), and tags that name them. Idempotent: the run's LoggedModels are
 * searched first (by source run, then the tessera.which and tessera.epoch tags), a READY one is
 * used as it is and an unfinished one (an upload cut short) is completed, so a second call (exp
 * sync twice, exp register after a sync) creates nothing. Two callers at once would each create
 * one: callers hold the run's sync lock (syncRun, registerRunModel) or are the live run itself.
 */
export async function ensureRunLoggedModels(runDir: string, options: EnsureLoggedModelsOptions): Promise<RunLoggedModels> {
  const { client, runId, experimentId } = options;
  const { log: toLog, bestIsFinal } = await runModelsToLog(runDir);
  const ids: Partial<Record<WhichModel, string>> = {};
  let created = 0;
  if (toLog.length === 0) return { ids, created };
  const existing = await client.searchLoggedModels({ experimentIds: [experimentId], filter: `source_run_id = '${runId}'` });
  const run = await client.getRun(runId);
  for (const which of toLog) {
    const { files, metadata } = await modelDirFiles(join(runDir, 'artifacts', RUN_MODEL_PATHS[which]));
    const epoch = metadata.epoch ?? 0;
    // A LoggedModel logged before the tessera.epoch tag existed counts for its `which`.
    const mine = existing.filter((m) => m.tags['tessera.which'] === which && (m.tags['tessera.epoch'] ?? String(epoch)) === String(epoch));
    let model = mine.find((m) => m.status === 'LOGGED_MODEL_READY');
    if (!model) {
      const unfinished = mine.find((m) => m.status !== 'LOGGED_MODEL_READY');
      model = await logLoggedModel({
        client,
        experimentId,
        runId,
        name: LOGGED_MODEL_NAMES[which],
        files,
        metadata,
        metrics: await metricsAtEpoch(client, runDir, runId, epoch),
        step: epoch,
        ...(unfinished ? { existing: unfinished } : {}),
      });
      created++;
      options.log?.(`MLflow LoggedModel ${model.modelId}: the run's ${which} model (epoch ${epoch})`);
    }
    ids[which] = model.modelId;
    if (run.data.tags[LOGGED_MODEL_TAGS[which]] !== model.modelId) await client.setTag(runId, LOGGED_MODEL_TAGS[which], model.modelId);
  }
  if (bestIsFinal && ids.final) ids.best = ids.final;
  return { ids, created };
}
