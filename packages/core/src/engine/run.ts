import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import type { Registries } from '../registry/kinds.ts';
import type { TrackingConfig } from '../schema/types.ts';
import { effectiveConfig } from '../schema/validate.ts';
import { selectBackend, type BackendRequest } from '../backend/select.ts';
import { experimentPluginRefs, pluginRefs, projectPluginRefs } from '../plugins/plugins.ts';
import { loadPlugins, pluginFile, type PluginRef } from '../registry/plugin-loader.ts';
import { buildExperimentModel, createExperimentData, loadValidatedExperiment, type Experiment } from '../experiment/experiment.ts';
import { disposeModel } from '../graph/build.ts';
import { LocalRunStore, findRunDir, readMetrics, readRunMeta, readSystemMetrics } from '../tracking/local-store.ts';
import { currentHolder, RunLockedError } from '../tracking/run-lock.ts';
import { SystemMetricsMonitor } from '../tracking/system-metrics.ts';
import { combineTrackers, redactingTracker, OBJECTIVE_TAG, RUN_NAME_TAG, type RunStatus, type Tracker } from '../tracking/tracker.ts';
import { redactSecrets } from '../safety/redact.ts';
import { collectProvenance } from '../tracking/provenance.ts';
import { createMlflowTracker, type TrackerContext } from '../tracking/mlflow-tracker.ts';
import { EpochRecorder, recordRunEnd, recordRunStart, serializeModel } from '../tracking/run-record.ts';
import { modelMetadata, type ModelMetadata } from '../models/metadata.ts';
import { createProgress, formatDuration, type ProgressReporter } from './progress.ts';
import { train, type TrainResult } from './trainer.ts';
import type { TrainConfig } from './train-schema.ts';

/**
 * `exp run` as a function: the experiment API's steps (load and validate the experiment with
 * every template instance, pick the backend, build the model, then create the data), then open a
 * run record, train, and print a summary. A program calls it exactly as the CLI does.
 */
export interface RunOptions {
  /** Every registered entry (the composition root's builtinRegistries()). */
  registries: Registries;
  /** `--set a.b=value` arguments, applied after extends and before evaluation. */
  overrides?: string[];
  /** Shorthands for the overrides `backend=`, `seed=` and `train.epochs=`. */
  backend?: string;
  seed?: number;
  epochs?: number;
  /** Continue this run (a run id or its directory) from its last checkpoint. */
  resume?: string;
  /** Root of the local run store (default $TESSERA_RUNS_DIR, else runs/ at the repository root). */
  runsDir?: string;
  /**
   * Builds the tracker that records the run besides the local store (which always comes first);
   * default: MLflow when `tracking.uri` or MLFLOW_TRACKING_URI is set, else none.
   */
  createTracker?: (tracking: TrackingConfig, experiment: string, context: TrackerContext) => Tracker | undefined;
  /**
   * The run's name when the config has no `tracking.run_name` (default: a `mlflow.runName` in
   * `tags`, as a sweep gives its trials, else `<experiment>-<short id>`).
   */
  runName?: string;
  /** The local run id of the run this one belongs to (a sweep); MLflow shows it as the parent. */
  parentRunId?: string;
  /**
   * Tags the run carries from its start (so MLflow has them from the first moment, e.g. a sweep
   * trial's `sweep.name`); they win over the config's `tracking.tags`. A resumed run gets them too.
   */
  tags?: Record<string, string>;
  /** Where progress and messages go (default process.stdout). */
  output?: { write(text: string): unknown; isTTY?: boolean };
  /** 'auto': a redrawn bar on a terminal unless CI=true, plain lines otherwise. */
  progress?: 'auto' | 'bar' | 'plain' | 'none';
  /**
   * Aborting it finishes the current step, writes a checkpoint and ends the run KILLED (the CLI
   * aborts it on SIGINT/SIGTERM, with the signal's name as the reason). Core never exits the process.
   */
  signal?: AbortSignal;
}

export interface RunSummary {
  runId: string;
  runDir: string;
  experiment: string;
  status: Exclude<RunStatus, 'RUNNING'>;
  backend: string;
  /** One entry per finished epoch. */
  history: Record<string, number>[];
  test?: Record<string, number>;
  stoppedEarly: boolean;
  seconds: number;
}

/** Files the run record keeps next to its metrics. */
const CONFIG_ARTIFACT = 'config.json';
const RUN_ARTIFACT = 'run.json';

/** The repository root (nearest directory with pnpm-workspace.yaml or .git), else `start`. */
function repositoryRoot(start: string): string {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml')) || existsSync(join(dir, '.git'))) return dir;
    if (dirname(dir) === dir) return resolve(start);
  }
}

export function defaultRunsRoot(configDir: string): string {
  return process.env.TESSERA_RUNS_DIR ? resolve(process.env.TESSERA_RUNS_DIR) : join(repositoryRoot(configDir), 'runs');
}

function shorthandOverrides(options: RunOptions): string[] {
  return [
    ...(options.backend !== undefined ? [`backend=${options.backend}`] : []),
    ...(options.seed !== undefined ? [`seed=${options.seed}`] : []),
    ...(options.epochs !== undefined ? [`train.epochs=${options.epochs}`] : []),
  ];
}

/** Loads, overrides and validates the experiment (a file path or an already-parsed config). */
function prepare(fileOrConfig: string | Record<string, unknown>, options: RunOptions): Experiment {
  const overrides = [...(options.overrides ?? []), ...shorthandOverrides(options)];
  if (typeof fileOrConfig === 'string') {
    const experiment = loadValidatedExperiment(fileOrConfig, options.registries, { overrides });
    // The saved config names its plugins by absolute path (each was relative to the file that
    // listed it, a base file maybe), so a resumed run loads the same modules.
    const plugins = experiment.config.plugins;
    if (plugins) experiment.config.plugins = plugins.map((path, i) => resolve(dirname(experiment.locate(['plugins', i]).file), path));
    return experiment;
  }
  return loadValidatedExperiment({ config: fileOrConfig }, options.registries, { overrides });
}

/** The plugins a resumed run needs: its project's and those its saved config names (absolute since the run started). */
async function resumePluginRefs(runDir: string): Promise<PluginRef[]> {
  const { configDir } = JSON.parse(await readFile(join(runDir, 'artifacts', RUN_ARTIFACT), 'utf8')) as { configDir: string };
  const config = JSON.parse(await readFile(join(runDir, 'artifacts', CONFIG_ARTIFACT), 'utf8')) as Record<string, unknown>;
  const start = { file: join(runDir, 'artifacts', CONFIG_ARTIFACT), line: 1, col: 1 };
  return [...projectPluginRefs(configDir), ...pluginRefs(config.plugins, configDir, () => start)];
}

/** A resumed run trains the config it saved, not whatever the YAML file says today. */
async function prepareResume(runDir: string, options: RunOptions): Promise<Experiment> {
  const saved = JSON.parse(await readFile(join(runDir, 'artifacts', RUN_ARTIFACT), 'utf8')) as {
    configDir: string;
    overrides: string[];
    source: string;
  };
  const config = JSON.parse(await readFile(join(runDir, 'artifacts', CONFIG_ARTIFACT), 'utf8')) as Record<string, unknown>;
  if (options.overrides?.length || options.seed !== undefined) {
    throw new Error('--resume continues a run with its saved config; only --epochs and --backend may change');
  }
  const meta = await readRunMeta(runDir);
  if (meta.status === 'FINISHED') {
    // A finished run has its test evaluation and final model; resuming it would redo them.
    const done = (await readMetrics(runDir)).filter((record) => Object.keys(record).some((key) => !key.startsWith('test_') && key !== 'step' && key !== 'time')).length;
    const planned = (config.train as { epochs?: number }).epochs ?? done;
    if (options.epochs === undefined || options.epochs <= Math.max(done, planned)) {
      throw new ConfigError({
        message: `run ${meta.runId} is FINISHED (${done} epoch(s)); --resume continues it only when --epochs extends it beyond ${Math.max(done, planned)}`,
        hint: `exp run --resume ${meta.runId} --epochs ${Math.max(done, planned) + 1}`,
      });
    }
  }
  if (options.epochs !== undefined) (config.train as Record<string, unknown>).epochs = options.epochs;
  // Another machine may need another backend; the numbers then match to float tolerance only.
  if (options.backend !== undefined) config.backend = options.backend;
  return loadValidatedExperiment(
    { config, source: saved.source, file: join(runDir, 'artifacts', CONFIG_ARTIFACT), configDir: saved.configDir, overrides: saved.overrides },
    options.registries,
  );
}

function progressFor(options: RunOptions): ProgressReporter {
  const output = options.output ?? process.stdout;
  const write = (text: string) => void output.write(text);
  const mode = options.progress ?? 'auto';
  if (mode === 'none') return { epochStart() {}, step() {}, epochEnd() {}, message: (text) => write(`${text}\n`) };
  const tty = mode === 'bar' || (mode === 'auto' && !!output.isTTY && !process.env.CI);
  return createProgress({ write, tty });
}

/** Saves the trained model in the TF.js layers format (model.json + weights.bin). */
async function saveModel(
  model: tf.LayersModel,
  tracker: Tracker,
  log: (m: string) => void,
  metadata: ModelMetadata,
): Promise<void> {
  let files;
  try {
    files = await serializeModel(model, metadata);
  } catch (error) {
    // A layer without serialization support must not cost the run: the checkpoint has the weights.
    log(`note: the model could not be saved in the TF.js format (${(error as Error).message}); its weights are in the run's checkpoint`);
    return;
  }
  await tracker.logArtifact('model/model.json', { bytes: files.json });
  await tracker.logArtifact('model/weights.bin', { bytes: files.weights });
  await tracker.logModel?.({
    name: 'model',
    files: new Map<string, Uint8Array | string>([['model.json', files.json], ['weights.bin', files.weights]]),
    metadata,
    step: metadata.epoch ?? 0,
  });
}

/** Relative to the current directory when inside it, absolute otherwise. */
function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/** The end-of-run table: loss and metrics for train (last epoch), validation and test. */
export function formatSummaryTable(summary: RunSummary): string {
  const last = summary.history[summary.history.length - 1] ?? {};
  const rows: [string, Record<string, number>, string][] = [
    ['train', last, ''],
    ['validation', last, 'val_'],
    ['test', summary.test ?? {}, 'test_'],
  ];
  const columns = ['loss', 'accuracy', 'top5_accuracy'];
  const lines = [`${''.padEnd(12)}${columns.map((c) => c.padStart(15)).join('')}`];
  for (const [label, logs, prefix] of rows) {
    if (logs[`${prefix}loss`] === undefined) continue;
    lines.push(`${label.padEnd(12)}${columns.map((c) => (logs[`${prefix}${c}`]?.toFixed(4) ?? '-').padStart(15)).join('')}`);
  }
  const status = `${summary.status}${summary.stoppedEarly ? ' (stopped early)' : ''}`;
  return [
    `Run ${summary.runId} ${status}: ${summary.history.length} epoch(s) in ${formatDuration(summary.seconds)} on ${summary.backend}`,
    ...lines,
    `Run record: ${shortPath(summary.runDir)}`,
  ].join('\n');
}

export async function runExperiment(fileOrConfig: string | Record<string, unknown> | undefined, options: RunOptions): Promise<RunSummary> {
  const started = performance.now();
  const progress = progressFor(options);
  const log = (message: string) => progress.message(message);

  const resumeDir = options.resume ? await findRunDir(options.resume, options.runsDir ?? defaultRunsRoot(process.cwd())) : undefined;
  if (resumeDir) {
    // Refuse a live run before loading data; the lock taken by startRun settles any race.
    const holder = await currentHolder(resumeDir);
    if (holder) throw new RunLockedError(resumeDir, holder);
  }
  if (!resumeDir && fileOrConfig === undefined) throw new Error('runExperiment needs an experiment file or config (or options.resume)');
  // Plugins register their entries before the config is validated against the registries.
  const pluginList = resumeDir
    ? await resumePluginRefs(resumeDir)
    : typeof fileOrConfig === 'string'
      ? experimentPluginRefs(fileOrConfig, [...(options.overrides ?? []), ...shorthandOverrides(options)])
      : [...projectPluginRefs(process.cwd()), ...pluginRefs((fileOrConfig as Record<string, unknown>).plugins, process.cwd())];
  await loadPlugins(options.registries, pluginList);
  // Every saved model names them (absolute), so predict, serve, evaluate and export load them again.
  const plugins = pluginList.map(pluginFile);
  const prepared = resumeDir ? await prepareResume(resumeDir, options) : prepare(fileOrConfig!, options);
  const { config, configDir, seed } = prepared;
  const experiment = config.name ?? 'experiment';
  const trainConfig = config.train as unknown as TrainConfig;

  // The experiment API's order: the model (made where it will run) before any data is read.
  const backend = await selectBackend((config.backend ?? 'auto') as BackendRequest, log);
  const { model } = buildExperimentModel(prepared, options.registries);
  let dataset;
  try {
    dataset = await createExperimentData(prepared, options.registries, { log });
  } catch (error) {
    disposeModel(model);
    throw error;
  }

  const local = new LocalRunStore(options.runsDir ?? defaultRunsRoot(configDir), { log, purpose: resumeDir ? 'exp run --resume' : 'exp run' });
  const extra = (options.createTracker ?? createMlflowTracker)(config.tracking ?? {}, experiment, { local, log, locate: prepared.locate });
  // Every recorded string passes the one redaction function, whichever tracker gets it.
  const tracker = redactingTracker(extra ? combineTrackers(local, extra) : local);
  // tracking.run_name wins (the user's word), then the caller's name (a sweep trial's), then the default.
  const runName = config.tracking?.run_name ?? options.runName ?? options.tags?.[RUN_NAME_TAG];
  const tags = options.tags && runName ? { ...options.tags, [RUN_NAME_TAG]: runName } : options.tags;
  const run = await tracker.startRun({
    experiment,
    ...(runName && !resumeDir ? { runName } : {}),
    ...(resumeDir ? { resumeRunId: resumeDir } : {}),
    ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
    ...(tags ? { tags } : {}),
  });
  const runDir = run.dir!;

  let stopRequestedAt: number | undefined;
  const requestStop = (why: string) => {
    if (stopRequestedAt !== undefined) return;
    stopRequestedAt = Date.now();
    log(`\n${why}: finishing the current step, then writing a checkpoint (resume with: exp run --resume ${run.runId})`);
  };
  const onAbort = () => requestStop(typeof options.signal?.reason === 'string' ? options.signal.reason : 'aborted');
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });

  let result: TrainResult;
  let monitor: SystemMetricsMonitor | undefined;
  try {
    if (!resumeDir) {
      const provenance = collectProvenance(configDir);
      // Secrets are masked in what is written; a resumed run takes credentials from the environment.
      const overrides = redactSecrets(prepared.overrides);
      await tracker.logArtifact(CONFIG_ARTIFACT, { bytes: JSON.stringify(redactSecrets(config), null, 2) });
      await tracker.logArtifact(RUN_ARTIFACT, {
        bytes: JSON.stringify({ source: prepared.source, configDir, overrides, seed, backend: backend.name, provenance }, null, 2),
      });
      // The config's params come with recordRunStart (each once); these are what the run chose.
      await tracker.logParams({ seed, backend: backend.name });
      await tracker.setTags({
        'tessera.run_id': run.runId,
        'tessera.source': prepared.source,
        'tessera.overrides': JSON.stringify(overrides),
        'tessera.backend': backend.name,
        'tessera.seed': String(seed),
        'tessera.dataset': dataset.info.name,
        'tessera.node': provenance.node,
        'tessera.packages': JSON.stringify(provenance.packages),
        ...(provenance.gitCommit ? { 'git.commit': provenance.gitCommit, 'git.dirty': String(provenance.gitDirty) } : {}),
      });
      await recordRunStart(tracker, {
        config,
        effective: effectiveConfig(config, options.registries),
        source: prepared.source,
        overrides: prepared.overrides,
        model,
        dataset: dataset.info,
        backend: backend.name,
        provenance,
        runName: run.runName ?? run.runId,
        ...(options.parentRunId ? { parentRunId: options.parentRunId } : {}),
      });
      // recordRunStart set the config's tracking.tags; the caller's tags win over them.
      if (tags) await tracker.setTags(tags);
    }
    log(`Run ${run.runId}: ${experiment}, ${model.countParams()} parameters, ${dataset.info.counts.train} training examples`);
    // tracking.log_every_n_steps: the training metrics every N optimizer steps, as step/<metric>.
    const logEveryNSteps = config.tracking?.log_every_n_steps;
    const logStep = (step: number, logs: Record<string, number>) =>
      tracker.logMetrics(Object.fromEntries(Object.entries(logs).map(([key, value]) => [`step/${key}`, value])), step);
    // Every saved model (best_model/ per improvement, model/ at the end) carries what using it needs.
    const metadataFor = (which: 'best' | 'final', epoch: number) =>
      modelMetadata({ config, dataset, which, epoch, source: prepared.source, seed, runId: run.runId, plugins });
    const epochs = new EpochRecorder(tracker, model, {
      history: resumeDir ? await readMetrics(runDir) : [],
      log,
      metadata: (epoch) => metadataFor('best', epoch),
      ...(options.tags?.[OBJECTIVE_TAG] ? { first: options.tags[OBJECTIVE_TAG] } : {}),
    });
    // MLflow's system metrics: their own clock (every 10 s), their own steps (continued on resume).
    const previousSamples = resumeDir ? ((await readSystemMetrics(runDir)).at(-1)?.step ?? -1) + 1 : 0;
    monitor = new SystemMetricsMonitor((metrics, step) => tracker.logMetrics(metrics, step), undefined, undefined, previousSamples).start();
    result = await train({
      model,
      dataset,
      train: trainConfig,
      registries: options.registries,
      seed,
      progress,
      checkpointDir: join(runDir, 'checkpoint'),
      resume: !!resumeDir,
      onEpochEnd: (epoch, logs) => epochs.epochEnd(epoch, logs),
      ...(logEveryNSteps ? { onStep: (step: number, logs: Record<string, number>) => (step % logEveryNSteps === 0 ? logStep(step, logs) : undefined) } : {}),
      shouldStop: () => stopRequestedAt !== undefined,
    });
    await monitor.stop();
    if (result.test) await tracker.logMetrics(result.test, result.history.length);
    if (result.status === 'FINISHED') await saveModel(model, tracker, log, metadataFor('final', result.history.length));
    await recordRunEnd(tracker, result.history);
    await tracker.endRun(result.status);
  } catch (error) {
    await monitor?.stop().catch(() => undefined);
    await tracker.endRun('FAILED', error instanceof Error ? `${error.name}: ${error.message}` : String(error)).catch(() => undefined);
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    disposeModel(model);
  }

  const summary: RunSummary = {
    runId: run.runId,
    runDir,
    experiment,
    status: result.status,
    backend: backend.name,
    history: result.history,
    ...(result.test ? { test: result.test } : {}),
    stoppedEarly: result.stoppedEarly,
    seconds: (performance.now() - started) / 1000,
  };
  log(formatSummaryTable(summary));
  if (summary.status === 'KILLED') log(`Stopped. Resume with: exp run --resume ${run.runId}`);
  return summary;
}
