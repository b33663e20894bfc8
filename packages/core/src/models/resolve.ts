import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { cacheRoot } from '../registry/cache.ts';
import { ConfigError } from '../errors.ts';
import { MODEL_FILE } from '../graph/io.ts';
import { findRunDir, readRunMeta } from '../tracking/local-store.ts';

/* ------------------------------------------------------------------------------------------ *
 * MODEL as users type it, to a local model directory: a run id, a run directory, an exported  *
 * directory, or an MLflow URI (`runs:/ID/PATH`, `models:/NAME/VERSION`, `models:/NAME@ALIAS`),*
 * the last fetched by the caller's `fetchMlflow` into a local cache.                          *
 * ------------------------------------------------------------------------------------------ */

export type WhichModel = 'best' | 'final';

/** The artifact folder of each kind of run model. */
export const RUN_MODEL_PATHS: Record<WhichModel, string> = { final: 'model', best: 'best_model' };

export interface ResolvedModel {
  dir: string;
  /** How to name it in messages (`run 20261204-... (final)`, `models:/mixer/1`). */
  label: string;
  /** The local run directory, when the model belongs to one. */
  runDir?: string;
  /** Fetched from an MLflow server, or lying in its download cache: its metadata is downloaded data (so the plugins it names are not loaded). */
  downloaded?: boolean;
}

/** Where MLflow models are cached locally (a LoggedModel's files never change once READY). */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), 'mlflow-models');
}

/**
 * Whether `dir` lies in the MLflow model cache: a model downloaded there, however MODEL names it
 * (a models:/ URI, or the cache directory's path), is data from a server.
 */
export function isDownloadedModel(dir: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const real = (path: string) => (existsSync(path) ? realpathSync(path) : resolve(path));
  const rel = relative(real(modelCacheDir(env)), real(dir));
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

export interface ResolveModelOptions {
  cwd: string;
  /** Root of the local run store, where run ids are looked up. */
  runsDir: string;
  which?: WhichModel;
  /** Fetches an MLflow model URI into a local directory (absent: such URIs are refused). */
  fetchMlflow?: (uri: string) => Promise<string>;
}

function shown(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/** The model directory of a local run, with a reason when the run has none. */
export async function runModelDir(runDir: string, which: WhichModel, cwd: string): Promise<string> {
  const dir = join(runDir, 'artifacts', RUN_MODEL_PATHS[which]);
  if (existsSync(join(dir, MODEL_FILE))) return dir;
  const meta = await readRunMeta(runDir).catch(() => undefined);
  const status = meta ? ` (status ${meta.status})` : '';
  const other = which === 'final' ? 'best' : 'final';
  const hint = existsSync(join(runDir, 'artifacts', RUN_MODEL_PATHS[other], MODEL_FILE)) ? `; it has a ${other} model: --which ${other}` : '';
  throw new ConfigError({ message: `run ${meta?.runId ?? shown(runDir, cwd)}${status} has no ${which} model (${shown(dir, cwd)}/${MODEL_FILE} is missing)${hint}` });
}

export async function resolveModel(spec: string, options: ResolveModelOptions): Promise<ResolvedModel> {
  const which = options.which ?? 'final';
  if (spec.startsWith('models:/')) {
    if (!options.fetchMlflow) throw new ConfigError({ message: `${spec}: models:/ URIs need an MLflow server (set MLFLOW_TRACKING_URI)` });
    return { dir: await options.fetchMlflow(spec), label: spec, downloaded: true };
  }
  if (spec.startsWith('runs:/')) {
    const match = /^runs:\/([^/]+)(?:\/(.+))?$/.exec(spec);
    if (!match) throw new ConfigError({ message: `${spec}: expected runs:/RUN_ID/PATH, e.g. runs:/20261204-010203-abcdef/model` });
    const [, runId, path = RUN_MODEL_PATHS[which]] = match;
    const local = await findRunDir(runId!, options.runsDir).catch(() => undefined);
    if (local) {
      const dir = join(local, 'artifacts', ...path!.split('/'));
      if (!existsSync(join(dir, MODEL_FILE))) throw new ConfigError({ message: `${spec}: run ${runId} has no model at ${shown(dir, options.cwd)}` });
      return { dir, label: spec, runDir: local };
    }
    if (!options.fetchMlflow) throw new ConfigError({ message: `${spec}: no local run ${runId} under ${shown(options.runsDir, options.cwd)}, and no MLflow server is configured` });
    return { dir: await options.fetchMlflow(spec), label: spec, downloaded: true };
  }
  const path = resolve(options.cwd, spec);
  if (existsSync(join(path, MODEL_FILE))) {
    // An exported directory, or a run's artifacts/model: find its run for `evaluate`.
    const runDir = existsSync(join(path, '..', '..', 'meta.json')) ? resolve(path, '..', '..') : undefined;
    return { dir: path, label: shown(path, options.cwd), ...(runDir ? { runDir } : {}), ...(isDownloadedModel(path) ? { downloaded: true } : {}) };
  }
  if (existsSync(join(path, 'meta.json'))) {
    return { dir: await runModelDir(path, which, options.cwd), label: `run ${shown(path, options.cwd)} (${which})`, runDir: path };
  }
  if (existsSync(path)) {
    throw new ConfigError({ message: `${spec}: neither a model directory (no ${MODEL_FILE}) nor a run directory (no meta.json)` });
  }
  let runDir: string;
  try {
    runDir = await findRunDir(spec, options.runsDir);
  } catch {
    throw new ConfigError({
      message: `${spec}: no such run id under ${shown(options.runsDir, options.cwd)}, model directory, or MLflow URI (models:/NAME/VERSION, models:/NAME@ALIAS, runs:/ID/model)`,
    });
  }
  return { dir: await runModelDir(runDir, which, options.cwd), label: `run ${spec} (${which})`, runDir };
}
