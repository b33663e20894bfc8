import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ImageDecoder, Predictor, Registries, ResolvedModel, WhichModel } from '@tessera/core';
import { pluginOption, registriesWithPlugins, UsageError, type CommandContext, type OptionSpec } from './command.ts';

/* ------------------------------------------------------------------------------------------ *
 * What predict, serve, evaluate and export share: MODEL to a loaded Predictor (the model, its *
 * metadata and the training preprocessing restored from the data package), and the options.   *
 * ------------------------------------------------------------------------------------------ */

export const modelOptions = {
  which: { type: 'string', placeholder: 'best|final', default: 'final', description: 'For a run: its final model or the best epoch\'s' },
  'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the local run store (default: $TESSERA_RUNS_DIR, else runs/ in the repository)' },
  backend: { type: 'string', placeholder: 'NAME', default: 'auto', description: 'auto, tensorflow-gpu, tensorflow, wasm or cpu' },
  plugin: {
    ...pluginOption,
    description:
      'Load this plugin module instead of those the model recorded (repeatable; relative to the working directory): ' +
      'for a model whose plugins moved, or one fetched from MLflow, whose recorded plugins are never loaded; ' +
      'with exp export, the exported model records these instead',
  },
} as const satisfies Record<string, OptionSpec>;

export const MODEL_ARGUMENT = {
  name: 'MODEL',
  description: 'A run id, a run directory, a directory written by exp export, runs:/ID/model, models:/NAME/VERSION or models:/NAME@ALIAS',
};

export function whichOption(value: string, command: string): WhichModel {
  if (value !== 'best' && value !== 'final') throw new UsageError(`--which is best or final, got "${value}"`, command);
  return value;
}

export function positiveInteger(name: string, value: string, command: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${name} expects a positive integer, got "${value}"`, command);
  return Number(value);
}

/**
 * `--out` checked before any work: `folder` must be a folder this process can write in, or with
 * `create`, a folder it can make (its nearest existing ancestor a writable folder).
 */
export function assertWritableFolder(folder: string, out: string, command: string, options: { create?: boolean } = {}): void {
  let existing = folder;
  while (options.create && !existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  let isFolder = false;
  try {
    isFolder = statSync(existing).isDirectory();
    if (isFolder) accessSync(existing, constants.W_OK);
  } catch {
    throw new UsageError(`--out ${out}: ${isFolder ? 'cannot write in' : 'no such folder'} ${existing}`, command);
  }
  if (!isFolder) throw new UsageError(`--out ${out}: ${existing} is not a folder`, command);
}

/** The one image decoder (packages/data, sharp-based) and the file extensions it reads. */
export async function imageCodec(): Promise<{ decode: ImageDecoder; extensions: readonly string[] }> {
  const { decodeImage, IMAGE_EXTENSIONS } = await import('@tessera/data');
  return { decode: decodeImage, extensions: IMAGE_EXTENSIONS };
}

export async function runsRoot(context: CommandContext, option: string | undefined): Promise<string> {
  if (option) return resolve(context.cwd, option);
  const { defaultRunsRoot } = await import('@tessera/core');
  return defaultRunsRoot(context.cwd);
}

/** MODEL to a local directory, fetching MLflow URIs through the MLflow client configured by the environment. */
export async function resolveModelArgument(
  spec: string,
  context: CommandContext,
  options: { which: WhichModel; runsDir?: string | undefined },
): Promise<ResolvedModel> {
  const { resolveModel, fetchMlflowModel } = await import('@tessera/core');
  return resolveModel(spec, {
    cwd: context.cwd,
    runsDir: await runsRoot(context, options.runsDir),
    which: options.which,
    ...(process.env.MLFLOW_TRACKING_URI ? { fetchMlflow: (uri: string) => fetchMlflowModel(uri, { log: (m) => void context.stderr.write(`${m}\n`) }) } : {}),
  });
}

/**
 * Loads a resolved model into `registries`' world: first the plugins its layers and transforms
 * come from (those it recorded by absolute path, each named on stderr as it loads; --plugin
 * modules instead when given; none recorded by a downloaded model), then the model.
 */
export async function loadResolvedModel(resolved: ResolvedModel, registries: Registries, plugins: readonly string[] | undefined, context: CommandContext) {
  const { loadModelDir, loadModelPlugins } = await import('@tessera/core');
  if (!plugins?.length) await loadModelPlugins(registries, resolved, (message) => void context.stderr.write(`${message}\n`));
  return loadModelDir(resolved.dir, resolved.label);
}

/** Loads MODEL (after picking the backend) with its plugins and its training preprocessing. */
export async function openPredictor(
  spec: string,
  context: CommandContext,
  options: { which: string; runsDir?: string | undefined; backend: string; plugin?: string[] | undefined },
  command: string,
): Promise<{ predictor: Predictor; resolved: ResolvedModel }> {
  const which = whichOption(options.which, command);
  const registries = await registriesWithPlugins(context, options.plugin); // registers the primitives' layer classes too
  const { selectBackend, Predictor } = await import('@tessera/core');
  const { restoreTransforms } = await import('@tessera/data');
  await selectBackend(options.backend as Parameters<typeof selectBackend>[0], () => {});
  const resolved = await resolveModelArgument(spec, context, { which, runsDir: options.runsDir });
  const { model, metadata } = await loadResolvedModel(resolved, registries, options.plugin, context);
  const transforms = restoreTransforms(metadata.data.transforms, metadata.data.state, registries);
  return { predictor: new Predictor(model, metadata, transforms), resolved };
}

/** The MLflow client for a run: MLFLOW_TRACKING_URI, else the server the run was recorded in. */
async function mlflowClientFor(runDir: string): Promise<import('@tessera/mlflow').MlflowClient> {
  const { MlflowClient } = await import('@tessera/mlflow');
  const { readSyncStates } = await import('@tessera/core');
  if (process.env.MLFLOW_TRACKING_URI) return MlflowClient.fromEnv();
  const known = Object.keys(await readSyncStates(runDir));
  if (known.length === 1) return MlflowClient.fromEnv(process.env, { trackingUri: known[0]! });
  throw new UsageError(
    known.length === 0
      ? 'registering a model needs an MLflow server: set MLFLOW_TRACKING_URI (the run is then sent there first), e.g. the URL `exp ui` prints while it runs'
      : `the run was recorded in several MLflow servers (${known.join(', ')}): choose one with MLFLOW_TRACKING_URI`,
    'register',
  );
}

/**
 * MLflow's rules for a registered model's name and an alias, checked before anything is sent
 * (before training, for `exp run --register`): a version made and then refused its alias would
 * be half a registration.
 */
export function checkRegistrationNames(name: string, alias: string | undefined, command: string): void {
  if (name.trim() === '' || /[/:]/.test(name)) throw new UsageError(`"${name}" cannot name a registered model: it must be non-empty, without / or :`, command);
  if (alias === undefined) return;
  if (!/^[\w-]{1,255}$/.test(alias)) throw new UsageError(`--alias "${alias}": an alias is letters, digits, _ and - (at most 255)`, command);
  if (/^(latest|v\d+)$/i.test(alias)) throw new UsageError(`--alias "${alias}": "latest" and v<number> are reserved by MLflow (models:/NAME/latest, versions)`, command);
}

/**
 * Registers RUN's model as a new version of NAME in MLflow's Model Registry. A sweep's run
 * stands for its best trial (tag best_run_id), so the winner is registered in one command.
 */
export async function registerRun(
  spec: string,
  name: string,
  context: CommandContext,
  options: { which: WhichModel; alias?: string | undefined; runsDir?: string | undefined; tags?: Record<string, string> | undefined },
): Promise<void> {
  checkRegistrationNames(name, options.alias, 'register');
  const { findRunDir, readRunMeta, readRunTags, registerRunModel } = await import('@tessera/core');
  const root = await runsRoot(context, options.runsDir);
  let runDir = await findRunDir(resolve(context.cwd, spec), root).catch(() => findRunDir(spec, root)).catch(() => {
    throw new UsageError(`no run "${spec}" under ${root}`, 'register');
  });
  const tags = await readRunTags(runDir);
  if (tags.best_run_id) {
    context.stderr.write(`sweep ${(await readRunMeta(runDir)).runId}: registering its best trial, run ${tags.best_run_id}\n`);
    runDir = await findRunDir(tags.best_run_id, root).catch(() => {
      throw new UsageError(`sweep ${spec}: its best trial's run ${tags.best_run_id} is not under ${root} (run the command where the sweep ran, or give --runs-dir)`, 'register');
    });
  }
  const client = await mlflowClientFor(runDir);
  const log = (message: string) => void context.stderr.write(`${message}\n`);
  const registered = await registerRunModel({
    client,
    runDir,
    name,
    which: options.which,
    ...(options.alias ? { alias: options.alias } : {}),
    ...(options.tags ? { tags: options.tags } : {}),
    log,
  });
  const { version } = registered;
  context.stdout.write(
    `Registered ${name} version ${version.version} (LoggedModel ${registered.modelId}, MLflow run ${registered.mlflowRunId})` +
      `${options.alias ? `, alias @${options.alias}` : ''}\n` +
      `  use it: exp predict models:/${name}/${version.version} --input IMAGE   |   exp serve models:/${name}${options.alias ? `@${options.alias}` : `/${version.version}`}\n` +
      `  in the UI: ${client.trackingUri}/#/models/${encodeURIComponent(name)}/versions/${version.version}\n`,
  );
}
