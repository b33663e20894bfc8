import { redactSecrets } from '../safety/redact.ts';
import type { ModelMetadata } from '../models/metadata.ts';

/**
 * Where runs are recorded. The engine talks only to this interface; the local run store is the
 * embedded default and an MLflow tracker implements the same calls. All calls are async and
 * must not lose what was already logged when the process dies afterwards.
 */
export type RunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';

export type ParamValue = string | number | boolean;

/** MLflow's tag for a run's display name. */
export const RUN_NAME_TAG = 'mlflow.runName';

/**
 * The metric a sweep judges a trial by (a tag of the trial's run, e.g. `val_loss`). The run logs
 * it first in every epoch's record: MLflow's compare page draws its parallel-coordinates plot
 * with the first metric the first compared run logged, so a sweep's trials open on their objective.
 */
export const OBJECTIVE_TAG = 'sweep.metric';

/** A plain run's default name: `<experiment>-<the run id's random part>`, e.g. `smoke-ab12cd`. */
export function defaultRunName(experiment: string, runId: string): string {
  return `${experiment}-${runId.split('-').at(-1)}`;
}

export interface StartRunOptions {
  experiment: string;
  /** Human-readable run name (default: defaultRunName). */
  runName?: string;
  /** Continue this run instead of creating one (exp run --resume). */
  resumeRunId?: string;
  tags?: Record<string, string>;
  /** The run this one belongs to (a sweep's trial under its sweep run): a run id of the same tracker. */
  parentRunId?: string;
}

/** A dataset a run used (MLflow's log-inputs). */
export interface DatasetInput {
  name: string;
  /** Short content hash (the data fingerprint). */
  digest: string;
  /** Where the data came from (a path or a description). */
  source: string;
  /** 'train', 'validation', 'test', ... */
  context?: string;
  /** Sizes and shapes, e.g. {"train": 45000}. */
  profile?: Record<string, unknown>;
}

export interface RunInfo {
  runId: string;
  /** The run's display name (MLflow's run name). */
  runName?: string;
  experiment: string;
  /** Local directory of the run, when the tracker keeps one (checkpoints live there). */
  dir?: string;
}

export type ArtifactContent = { file: string } | { bytes: Uint8Array | string };

/** A trained model as a tracker may record it besides its artifacts (MLflow: a LoggedModel). */
export interface SavedModel {
  /** `model` (the final one) or `best_model`. */
  name: string;
  /** model.json, weights.bin by file name. */
  files: Map<string, Uint8Array | string>;
  metadata: ModelMetadata;
  /** The epoch the model is from. */
  step: number;
}

export interface Tracker {
  startRun(options: StartRunOptions): Promise<RunInfo>;
  logParams(params: Record<string, ParamValue>): Promise<void>;
  /** `step` is the 1-based epoch for per-epoch metrics. */
  logMetrics(metrics: Record<string, number>, step: number): Promise<void>;
  setTags(tags: Record<string, string>): Promise<void>;
  /** Stores an artifact under `path` (relative, '/'-separated) in the run. */
  logArtifact(path: string, content: ArtifactContent): Promise<void>;
  /** Records the datasets the run used (optional: trackers without it skip the call). */
  logInputs?(datasets: DatasetInput[]): Promise<void>;
  /** Records a model saved as artifacts as a model entity too (optional: MLflow's LoggedModel). */
  logModel?(model: SavedModel): Promise<void>;
  endRun(status: Exclude<RunStatus, 'RUNNING'>, error?: string): Promise<void>;
}

/** Sends every call to each tracker in turn (e.g. the local store and MLflow). */
export function combineTrackers(primary: Tracker, ...others: Tracker[]): Tracker {
  const all = [primary, ...others];
  return {
    async startRun(options) {
      const info = await primary.startRun(options);
      // The others learn the primary's run id (also set as the tag tessera.run_id), so that on
      // resume they can find their own run for it.
      const { resumeRunId: _given, ...rest } = options;
      for (const other of others) {
        await other.startRun({
          ...rest,
          runName: options.runName ?? info.runName ?? info.runId,
          ...(options.resumeRunId ? { resumeRunId: info.runId } : {}),
          tags: { ...options.tags, 'tessera.run_id': info.runId },
        });
      }
      return info;
    },
    async logParams(params) {
      for (const t of all) await t.logParams(params);
    },
    async logMetrics(metrics, step) {
      for (const t of all) await t.logMetrics(metrics, step);
    },
    async setTags(tags) {
      for (const t of all) await t.setTags(tags);
    },
    async logArtifact(path, content) {
      for (const t of all) await t.logArtifact(path, content);
    },
    async logInputs(datasets) {
      for (const t of all) await t.logInputs?.(datasets);
    },
    async logModel(model) {
      for (const t of all) await t.logModel?.(model);
    },
    async endRun(status, error) {
      for (const t of all) await t.endRun(status, error);
    },
  };
}

/**
 * Flattens nested config into MLflow-style dotted params: {train: {epochs: 3}} -> train.epochs.
 * A list of scalars is one JSON value; a list of objects is keyed by index, or with `byName` by
 * each item's `name` where the items' names are unique strings (index for an unnamed one).
 */
export function flattenParams(
  value: unknown,
  prefix = '',
  out: Record<string, ParamValue> = {},
  options: { byName?: boolean } = {},
): Record<string, ParamValue> {
  const join = (key: string | number) => (prefix ? `${prefix}.${key}` : String(key));
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenParams(v, join(k), out, options);
  } else if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) out[prefix] = JSON.stringify(value);
    else {
      const names = value.map((v) => (options.byName && v !== null && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string' ? (v as { name: string }).name : undefined));
      const unique = (name: string | undefined) => name !== undefined && !/^\d+$/.test(name) && names.filter((n) => n === name).length === 1;
      value.forEach((v, i) => {
        if (!unique(names[i])) return void flattenParams(v, join(i), out, options);
        // Keyed by its name, the item's `name` would only repeat the key.
        const { name: _name, ...rest } = v as Record<string, unknown>;
        flattenParams(rest, join(names[i]!), out, options);
      });
    }
  } else if (value !== undefined && value !== null && prefix) {
    out[prefix] = value as ParamValue;
  }
  return out;
}

/**
 * The tracker with every recorded string passed through the one redaction function: params,
 * tags, the error a run ends with, and text artifacts. A run's own code cannot forget it.
 */
export function redactingTracker(tracker: Tracker): Tracker {
  const text = (content: ArtifactContent): ArtifactContent =>
    'bytes' in content && typeof content.bytes === 'string' ? { bytes: redactSecrets(content.bytes) } : content;
  return {
    startRun: (options) => tracker.startRun(options.tags ? { ...options, tags: redactSecrets(options.tags) } : options),
    logParams: (params) => tracker.logParams(redactSecrets(params)),
    logMetrics: (metrics, step) => tracker.logMetrics(metrics, step),
    setTags: (tags) => tracker.setTags(redactSecrets(tags)),
    logArtifact: (path, content) => tracker.logArtifact(path, text(content)),
    ...(tracker.logInputs ? { logInputs: (datasets: DatasetInput[]) => tracker.logInputs!(redactSecrets(datasets)) } : {}),
    // The model's files are the run's model artifacts (binary, as logArtifact passes them on).
    ...(tracker.logModel ? { logModel: (model: SavedModel) => tracker.logModel!(model) } : {}),
    endRun: (status, error) => tracker.endRun(status, error === undefined ? undefined : redactSecrets(error)),
  };
}
