import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { MlflowClient, type ModelVersion } from '@tessera/mlflow';
import { ConfigError } from '../errors.ts';
import { MODEL_FILE } from '../graph/io.ts';
import { readMetrics, readRunMeta } from '../tracking/local-store.ts';
import { acquireRunLock } from '../tracking/run-lock.ts';
import { containedJoin } from '../safety/paths.ts';
import { readSyncStates, syncRun } from '../tracking/sync.ts';
import { ensureRunLoggedModels, modelDirFiles } from './logged-model.ts';
import { modelCacheDir, runModelDir, type WhichModel } from './resolve.ts';

export {
  ensureRunLoggedModels,
  logLoggedModel,
  mlmodelFile,
  modelDirFiles,
  runModelsToLog,
  FLAVOR,
  LOGGED_MODEL_NAMES,
  LOGGED_MODEL_TAG,
  LOGGED_MODEL_TAGS,
  type EnsureLoggedModelsOptions,
  type LogLoggedModelOptions,
  type RunLoggedModels,
} from './logged-model.ts';

/* ------------------------------------------------------------------------------------------ *
 * A Tessera model in MLflow 3: a LoggedModel (its own artifacts: model.json, weights.bin and  *
 * an MLmodel file declaring the `tessera` flavor) linked to the run and its metrics, and      *
 * Model Registry versions pointing at it. Also the way back: models:/ URIs to a local folder. *
 * ------------------------------------------------------------------------------------------ */

/** The last epoch's metrics (and the test metrics) of a local run, for the model and its version. */
export async function finalMetrics(runDir: string): Promise<{ metrics: Record<string, number>; step: number }> {
  const history = await readMetrics(runDir);
  const metrics: Record<string, number> = {};
  for (const record of history) {
    for (const [key, value] of Object.entries(record)) {
      if (typeof value === 'number' && key !== 'step' && !key.startsWith('system/')) metrics[key] = value;
    }
  }
  return { metrics, step: history.at(-1)?.step ?? 0 };
}

export interface RegisterOptions {
  client: MlflowClient;
  /** The local run directory. */
  runDir: string;
  /** Registered model name. */
  name: string;
  which?: WhichModel;
  alias?: string;
  /** Extra tags on the version. */
  tags?: Record<string, string>;
  log?: (message: string) => void;
}

export interface Registration {
  version: ModelVersion;
  modelId: string;
  mlflowRunId: string;
}

/**
 * Registers a local run's model as a new version of `name`: syncs the run to MLflow first when
 * it is not complete there, uses the run's LoggedModel of that model (the best one is the final
 * one's when both are from the same epoch; logged now only for a run sent before Tessera logged
 * models), and tags the version with the run's metrics and ids.
 */
export async function registerRunModel(options: RegisterOptions): Promise<Registration> {
  const { client, runDir } = options;
  const which = options.which ?? 'final';
  const log = options.log ?? (() => {});
  const meta = await readRunMeta(runDir);
  // Before anything is sent: a run without this model (one stopped early has no final model) says which it has.
  const dir = await runModelDir(runDir, which, process.cwd());
  let state = (await readSyncStates(runDir))[client.trackingUri];
  if (!state?.runId || state.pending) {
    log(`sending run ${meta.runId} to MLflow (${client.trackingUri}) first`);
    await syncRun(runDir, { client });
    state = (await readSyncStates(runDir))[client.trackingUri];
  }
  const mlflowRunId = state!.runId!;
  const run = await client.getRun(mlflowRunId);
  const { metrics } = await finalMetrics(runDir);
  // Under the run's sync lock, as exp sync logs them: never two LoggedModels for one model.
  const lock = await acquireRunLock(runDir, { name: 'sync.lock', purpose: 'exp register', waitMs: 120_000 });
  let ids;
  try {
    ({ ids } = await ensureRunLoggedModels(runDir, { client, runId: mlflowRunId, experimentId: run.info.experimentId, log }));
  } finally {
    await lock.release();
  }
  const modelId = ids[which];
  if (!modelId) await modelDirFiles(dir); // names what an older Tessera's model lacks
  if (!modelId) throw new ConfigError({ message: `run ${meta.runId}: its ${which} model has no LoggedModel in MLflow (${client.trackingUri})` });
  await client.getOrCreateRegisteredModel(options.name);
  const metricTags = Object.fromEntries(Object.entries(metrics).map(([key, value]) => [`metric.${key}`, String(value)]));
  const version = await client.createModelVersion({
    name: options.name,
    source: `models:/${modelId}`,
    runId: mlflowRunId,
    modelId,
    tags: {
      'tessera.run_id': meta.runId,
      'tessera.experiment': meta.experiment,
      'tessera.which': which,
      ...Object.fromEntries(Object.entries(run.data.tags).filter(([key]) => key.startsWith('tessera.') && key !== 'tessera.packages')),
      ...metricTags,
      ...options.tags,
    },
  });
  if (options.alias) await client.setRegisteredModelAlias(options.name, options.alias, version.version);
  return { version, modelId, mlflowRunId };
}

/** A model version from `models:/NAME/VERSION` or `models:/NAME@ALIAS`; undefined for `models:/<model id>`. */
async function versionOf(client: MlflowClient, uri: string): Promise<ModelVersion | undefined> {
  const alias = /^models:\/([^/@]+)@([^/]+)$/.exec(uri);
  if (alias) return client.getModelVersionByAlias(alias[1]!, alias[2]!);
  const numbered = /^models:\/([^/@]+)\/(\d+|latest)$/.exec(uri);
  if (!numbered) return undefined;
  return client.getModelVersion(numbered[1]!, numbered[2]!);
}

/**
 * Fetches `models:/NAME/VERSION`, `models:/NAME@ALIAS`, `models:/<model id>` or
 * `runs:/<mlflow run id>/PATH` into the local cache and returns the directory.
 */
export async function fetchMlflowModel(uri: string, options: { client?: MlflowClient; cacheDir?: string; log?: (m: string) => void } = {}): Promise<string> {
  const client = options.client ?? MlflowClient.fromEnv();
  const cache = options.cacheDir ?? modelCacheDir();
  let download: { key: string; list: () => Promise<string[]>; get: (path: string, to: string) => Promise<void> };
  try {
    if (uri.startsWith('runs:/')) {
      const [, runId, path = 'model'] = /^runs:\/([^/]+)\/?(.*)$/.exec(uri) ?? [];
      if (!runId) throw new ConfigError({ message: `${uri}: expected runs:/RUN_ID/PATH` });
      const prefix = path.replace(/\/+$/, '');
      download = {
        key: `run-${runId}-${prefix.replaceAll('/', '_')}`,
        list: async () => (await client.listArtifacts(runId, prefix)).filter((f) => !f.isDir).map((f) => f.path.slice(prefix.length + 1)),
        get: (file, to) => client.downloadFile(runId, `${prefix}/${file}`, to),
      };
    } else {
      const version = await versionOf(client, uri);
      // A version made from a LoggedModel has source models:/<model id> (model_id is not always echoed).
      let modelId = version?.modelId ?? /^models:\/(m-[\w-]+)$/.exec(version?.source ?? '')?.[1];
      if (!version) {
        const id = /^models:\/(m-[\w-]+)$/.exec(uri)?.[1];
        if (!id) throw new ConfigError({ message: `${uri}: expected models:/NAME/VERSION, models:/NAME@ALIAS or models:/<model id>` });
        modelId = id;
      }
      if (!modelId) {
        // A version registered from a run's artifact path (MLflow 2 style): fetch that.
        if (version?.source.startsWith('runs:/')) return fetchMlflowModel(version.source, options);
        throw new ConfigError({ message: `${uri}: version ${version?.version} has neither a LoggedModel nor a runs:/ source (${version?.source})` });
      }
      const id = modelId;
      download = {
        key: id,
        list: async () => (await client.listLoggedModelArtifacts(id)).filter((f) => !f.isDir).map((f) => f.path),
        get: (file, to) => client.downloadLoggedModelFile(id, file, to),
      };
    }
  } catch (error) {
    // A missing version is RESOURCE_DOES_NOT_EXIST; a missing alias, INVALID_PARAMETER_VALUE "... alias nope not found".
    if ((error as Error).name === 'MlflowError' && /RESOURCE_DOES_NOT_EXIST|not found/i.test(`${(error as { errorCode?: string }).errorCode} ${(error as Error).message}`)) {
      throw new ConfigError({ message: `${uri}: not found in MLflow (${client.trackingUri}): ${(error as Error).message}` });
    }
    throw error;
  }
  const dir = join(cache, download.key);
  if (existsSync(join(dir, MODEL_FILE))) return dir;
  options.log?.(`downloading ${uri} from ${client.trackingUri}`);
  const temp = `${dir}.${randomBytes(4).toString('hex')}.partial`;
  await mkdir(temp, { recursive: true });
  try {
    const files = await download.list();
    if (!files.includes(MODEL_FILE)) throw new ConfigError({ message: `${uri}: the MLflow artifacts have no ${MODEL_FILE} (found: ${files.join(', ') || 'nothing'})` });
    for (const file of files) {
      // The file names come from the server: none may land outside the model's directory.
      const target = (() => {
        try {
          return containedJoin(temp, ...file.split('/'));
        } catch {
          throw new ConfigError({ message: `${uri}: the MLflow artifacts name ${JSON.stringify(file)}, which is not a file in the model's directory` });
        }
      })();
      await download.get(file, target);
    }
    await rm(dir, { recursive: true, force: true });
    await rename(temp, dir);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  return dir;
}
