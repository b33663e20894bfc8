import type * as tf from '@tensorflow/tfjs';
import { dirname } from 'node:path';
import { loadExperiment as loadExperimentFile, type ValueOrigin } from '../config/index.ts';
import { ConfigError, type ConfigPath } from '../errors.ts';
import { buildModel, disposeModel } from '../graph/build.ts';
import { instantiateModel, type ModelPlan } from '../graph/instantiate.ts';
import type { DataShape, Dataset, Registries, SourceLocation } from '../registry/kinds.ts';
import type { ExperimentConfig } from '../schema/types.ts';
import { validateExperiment } from '../schema/validate.ts';

/* ------------------------------------------------------------------------------------------ *
 * The experiment API: the one way from a config to a trained model, in four steps that        *
 * `exp run`, `validate`, `summary`, `export`, sweeps and programs all take:                    *
 *   1. load      extends, --set overrides, ${...} variables    (loadValidatedExperiment)       *
 *   2. validate  the schema, then every model.blocks template instance                         *
 *   3. model     built for the shape the dataset entry declares    (buildExperimentModel)     *
 *   4. data      the dataset is created (files read) only now      (createExperimentData)     *
 * so that every mistake in the file is reported before any data is read.                      *
 * ------------------------------------------------------------------------------------------ */

/** An experiment after steps 1 and 2: loaded, validated, its model's templates instantiated. */
export interface Experiment {
  config: ExperimentConfig;
  /** The experiment file (absolute), or what stands for it (`<config object>`, a run's saved source). */
  source: string;
  /** Relative paths of the data section are relative to it. */
  configDir: string;
  /** The `--set` arguments applied. */
  overrides: string[];
  /** Every file read, bases first, the experiment file last (none for a config object). */
  files: string[];
  /** The run seed: the config's `seed`, else 0. */
  seed: number;
  /** The `model:` section with every template instance evaluated and checked. */
  plan: ModelPlan;
  /** Where the value at a config path was written, for located errors of the later steps. */
  locate(path: ConfigPath): SourceLocation;
  locateKey(path: ConfigPath): SourceLocation;
  origin?(path: ConfigPath): ValueOrigin | undefined;
}

/** A config already in memory (a program's object, a resumed run's saved config). */
export interface ExperimentObject {
  config: Record<string, unknown>;
  /** What the experiment is recorded as coming from (default `<config object>`). */
  source?: string;
  /** Where errors point (default: the source, line 1). */
  file?: string;
  /** Default: the current directory. */
  configDir?: string;
  /** The overrides it was made with, for the record; none are applied. */
  overrides?: string[];
}

export interface LoadExperimentOptions {
  /** `a.b=value` overrides (the text after `--set`); only for files. */
  overrides?: readonly string[];
}

/**
 * Steps 1 and 2: loads an experiment file (extends, overrides, variables) or takes a config
 * object, validates it against the schema assembled from `registries`, then instantiates and
 * checks every template instance of its model. Throws ConfigError(s), located; reads no data.
 */
export function loadValidatedExperiment(input: string | ExperimentObject, registries: Registries, options: LoadExperimentOptions = {}): Experiment {
  const overrides = [...(options.overrides ?? [])];
  if (typeof input === 'string') {
    const loaded = loadExperimentFile(input, { overrides });
    const config = validateExperiment(loaded, registries);
    const { file, files, locate, locateKey, origin } = loaded;
    return finish(config, { source: file, configDir: dirname(file), overrides, files, locate, locateKey, origin }, registries);
  }
  if (overrides.length > 0) throw new Error('overrides apply to experiment files; edit the config object instead');
  const source = input.source ?? '<config object>';
  const start = { file: input.file ?? source, line: 1, col: 1 };
  const located = { locate: () => start, locateKey: () => start };
  const config = validateExperiment({ config: input.config, ...located }, registries);
  return finish(config, { source, configDir: input.configDir ?? process.cwd(), overrides: input.overrides ?? [], files: [], ...located }, registries);
}

function finish(config: ExperimentConfig, rest: Omit<Experiment, 'config' | 'seed' | 'plan'>, registries: Registries): Experiment {
  const plan = instantiateModel(config.model, {
    registries,
    vars: config.vars,
    locate: rest.locate,
    locateKey: rest.locateKey,
    origin: rest.origin,
  });
  return { ...rest, config, seed: config.seed ?? 0, plan };
}

/** What the dataset entry declares about one example, from the data section alone (no data read). */
export function experimentDataShape(experiment: Experiment, registries: Registries): DataShape {
  const { type, ...params } = experiment.config.data;
  return registries.datasets.get(type).describe(params, { registries, configDir: experiment.configDir, locate: experiment.locate });
}

export interface BuildExperimentModelOptions {
  /** Initialisation seed (default: the experiment's). */
  seed?: number;
  /** Build for another input shape than the dataset's (`exp summary --input-shape`); the class check is kept. */
  inputShape?: number[];
}

/**
 * Step 3: the model, built for the input shape the dataset entry declares and initialised with
 * the run seed; its output must be one logit per class of the dataset (a located ConfigError
 * otherwise). Call it once the backend the model will run on is selected.
 */
export function buildExperimentModel(
  experiment: Experiment,
  registries: Registries,
  options: BuildExperimentModelOptions = {},
): { model: tf.LayersModel; data: DataShape } {
  const { config } = experiment;
  const declared = experimentDataShape(experiment, registries);
  const data = { ...declared, inputShape: options.inputShape ?? declared.inputShape };
  const model = buildModel(experiment.plan, {
    registries,
    inputShape: data.inputShape,
    seed: options.seed ?? experiment.seed,
    locate: experiment.locate,
    locateKey: experiment.locateKey,
    name: config.name ?? 'model',
  });
  const outputs = model.outputs[0]!.shape;
  if (outputs.length !== 2 || outputs[1] !== data.numClasses) {
    disposeModel(model);
    const path = ['model', 'layers', config.model.layers.length - 1];
    throw new ConfigError({
      location: experiment.locate(path),
      path,
      expected: `a model that outputs [batch, ${data.numClasses}] logits (${config.data.type} has ${data.numClasses} classes)`,
      found: `output shape [${outputs.map((d) => d ?? 'batch').join(', ')}]`,
    });
  }
  return { model, data };
}

/**
 * Step 4: the data pipeline (reads, downloads or generates the data). It must give the shape
 * the entry declared in step 3, which the model was built for.
 */
export async function createExperimentData(experiment: Experiment, registries: Registries, options: { log: (message: string) => void }): Promise<Dataset> {
  const { type, ...params } = experiment.config.data;
  const dataset = await registries.datasets.get(type).create(params, {
    configDir: experiment.configDir,
    seed: experiment.seed,
    registries,
    log: options.log,
    locate: experiment.locate,
  });
  const declared = experimentDataShape(experiment, registries);
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  if (!same(dataset.info.inputShape, declared.inputShape) || dataset.info.numClasses !== declared.numClasses) {
    throw new Error(
      `dataset "${type}" declared [${declared.inputShape}] examples of ${declared.numClasses} classes (describe) ` +
        `but created [${dataset.info.inputShape}] of ${dataset.info.numClasses} (create): its entry must agree with itself`,
    );
  }
  return dataset;
}
