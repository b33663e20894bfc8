import * as tf from '@tensorflow/tfjs';
import type { Batch, Dataset, Registries, Split } from '../registry/kinds.ts';
import type { Optimizer, NamedVariable } from './optimizers.ts';
import type { Schedule, ScheduleContext } from './schedules.ts';
import type { Callback, TrainerControl } from './callbacks.ts';
import { crossEntropy } from './losses.ts';
import { addBatch, batchStats, emptySums, means, METRIC_NAMES, type MetricName, type MetricSums } from './metrics.ts';
import { readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { stepSeed, withSeededRandom } from '../random/index.ts';
import type { ProgressReporter } from './progress.ts';
import { entryParams, type TrainConfig } from './train-schema.ts';

/**
 * The training loop, top to bottom: build optimizer, schedule and callbacks from the config,
 * maybe restore a checkpoint, then for each epoch run the steps, evaluate on the validation
 * split, let the callbacks act, log and checkpoint; at the end evaluate on the test split.
 */

/** Raised when the loss stops being a finite number; the run is then marked FAILED. */
export class NonFiniteLossError extends Error {
  override name = 'NonFiniteLossError';
  constructor(
    readonly loss: number,
    readonly epoch: number,
    readonly step: number,
    readonly globalStep: number,
  ) {
    super(
      `loss is ${loss} at epoch ${epoch + 1}, step ${step + 1} (optimizer step ${globalStep + 1}); ` +
        'the update was not applied. Lower the learning rate, add gradient clipping (clipnorm) or check the data.',
    );
  }
}

export interface TrainOptions {
  model: tf.LayersModel;
  dataset: Dataset;
  train: TrainConfig;
  registries: Registries;
  seed: number;
  progress: ProgressReporter;
  /** Where the checkpoint of this run lives (written at the end of every epoch). */
  checkpointDir?: string;
  /** Continue from the checkpoint in `checkpointDir`. */
  resume?: boolean;
  /** Called with each finished epoch's logs (1-based epoch), before its checkpoint is written. */
  onEpochEnd?: (epoch: number, logs: Record<string, number>) => Promise<void>;
  /** After every optimizer step: steps so far (1 after the first) and the epoch's running means. */
  onStep?: (globalStep: number, logs: Record<string, number>) => Promise<void> | void;
  /** Polled after every step: true finishes the step, writes a checkpoint and returns KILLED. */
  shouldStop?: () => boolean;
}

export interface TrainResult {
  status: 'FINISHED' | 'KILLED';
  /** One entry per finished epoch (including those before a resume). */
  history: Record<string, number>[];
  test?: Record<string, number>;
  stoppedEarly: boolean;
}

/** Everything a checkpoint holds besides tensors. */
interface CheckpointState {
  version: 1;
  /** Finished epochs. */
  epoch: number;
  /** Steps already taken in epoch `epoch` (non-zero only for a checkpoint written on a stop request). */
  stepInEpoch: number;
  trainSums: MetricSums;
  globalStep: number;
  optimizer: { type: string; iterations: number };
  /** The schedule's rate times this is the rate in use (callbacks such as reduce_lr_on_plateau change it). */
  learningRateScale: number;
  stopTraining: boolean;
  history: Record<string, number>[];
  weightNames: string[];
  trainableNames: string[];
  callbacks: { type: string; json: Record<string, unknown>; tensorCount: number }[];
  /** See rng.ts: each step's randomness is derived from (seed, epoch, step); nothing else to store. */
  rng: { scheme: 'per-step-mix'; seed: number };
}

/** Yields the items of `source` while the next one is already being prepared. */
async function* prefetch(source: AsyncIterable<Batch>): AsyncGenerator<Batch> {
  const iterator = source[Symbol.asyncIterator]();
  let next = iterator.next();
  try {
    while (true) {
      const current = await next;
      if (current.done) return;
      next = iterator.next();
      yield current.value;
    }
  } finally {
    // Stopped early: dispose the batch prepared ahead and close the source.
    const pending = await next.catch(() => undefined);
    if (pending && !pending.done) disposeBatch(pending.value);
    await iterator.return?.();
  }
}

function disposeBatch(batch: Batch): void {
  batch.x.dispose();
  batch.y.dispose();
  batch.yOneHot?.dispose();
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, dataset, train: config, registries, seed, progress } = options;
  const metrics: MetricName[] = config.metrics ?? [...METRIC_NAMES];
  const lossParams = config.loss ?? { type: 'sparse_categorical_crossentropy' };
  const evalBatchSize = config.eval_batch_size ?? config.batch_size;

  const [optimizerType, optimizerParams] = entryParams(config.optimizer);
  const optimizer = registries.optimizers.get(optimizerType).create(optimizerParams) as Optimizer;
  const [scheduleType, scheduleParams] = config.schedule ? entryParams(config.schedule) : ['constant', {}];
  const schedule = registries.schedules.get(scheduleType).create(scheduleParams) as Schedule;
  const callbacks = (config.callbacks ?? []).map((spec) => {
    const [type, params] = entryParams(spec);
    return registries.callbacks.get(type).create(params) as Callback;
  });

  const fullEpochSteps = dataset.numBatches('train', config.batch_size);
  const stepsPerEpoch = Math.min(config.steps_per_epoch ?? fullEpochSteps, fullEpochSteps);
  const scheduleContext: ScheduleContext = {
    baseLearningRate: optimizer.learningRate,
    totalSteps: stepsPerEpoch * config.epochs,
    stepsPerEpoch,
  };
  const trainable: NamedVariable[] = model.trainableWeights.map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
  const variables = trainable.map((t) => t.variable);

  // Mutable training state: exactly what a checkpoint saves.
  let epoch = 0;
  let stepInEpoch = 0;
  let globalStep = 0;
  let trainSums = emptySums();
  let learningRateScale = 1;
  let stopTraining = false;
  const history: Record<string, number>[] = [];

  const learningRate = () => schedule(globalStep, scheduleContext) * learningRateScale;
  const control: TrainerControl = {
    getLearningRate: learningRate,
    setLearningRate: (value) => {
      learningRateScale = value / schedule(globalStep, scheduleContext);
    },
    getWeights: () => model.weights.map((w) => w.read()),
    setWeights: (weights) => model.setWeights(weights),
    stopTraining: () => {
      stopTraining = true;
    },
    log: (message) => progress.message(message),
  };

  const saveCheckpoint = async () => {
    if (!options.checkpointDir) return;
    const tensors = new Map<string, tf.Tensor>();
    model.weights.forEach((w, i) => tensors.set(`weights/${i}`, w.read()));
    for (const [key, slot] of optimizer.getState().slots) tensors.set(`optimizer/${key}`, slot);
    const callbackStates = callbacks.map((callback, i) => {
      const state = callback.getState();
      state.tensors.forEach((t, j) => tensors.set(`callbacks/${i}/${j}`, t));
      return { type: callback.type, json: state.json, tensorCount: state.tensors.length };
    });
    const state: CheckpointState = {
      version: 1,
      epoch,
      stepInEpoch,
      trainSums,
      globalStep,
      optimizer: { type: optimizer.type, iterations: optimizer.iterations },
      learningRateScale,
      stopTraining,
      history,
      weightNames: model.weights.map((w) => w.originalName),
      trainableNames: trainable.map((t) => t.name),
      callbacks: callbackStates,
      rng: { scheme: 'per-step-mix', seed },
    };
    await writeCheckpoint(options.checkpointDir, state, tensors);
  };

  const restoreCheckpoint = async () => {
    const loaded = options.checkpointDir ? await readCheckpoint<CheckpointState>(options.checkpointDir) : undefined;
    if (!loaded) throw new Error(`no checkpoint to resume from in ${options.checkpointDir ?? '(no run directory)'}`);
    const { state, tensors } = loaded;
    const take = (key: string) => {
      const t = tensors.get(key);
      if (!t) throw new Error(`checkpoint is missing tensor ${key}`);
      tensors.delete(key);
      return t;
    };
    if (state.weightNames.length !== model.weights.length) {
      throw new Error(`checkpoint has ${state.weightNames.length} weights, the model ${model.weights.length}: was the model changed?`);
    }
    const weights = model.weights.map((w, i) => {
      const t = take(`weights/${i}`);
      if (!tf.util.arraysEqual(t.shape, w.shape as number[])) {
        throw new Error(`checkpoint weight ${state.weightNames[i]} has shape [${t.shape}], the model's ${w.originalName} [${w.shape}]`);
      }
      return t;
    });
    model.setWeights(weights);
    weights.forEach((t) => t.dispose());
    // Slots are keyed by weight name; names can differ between processes only in auto-generated
    // layer names, so map them by position.
    const rename = new Map(state.trainableNames.map((old, i) => [old, trainable[i]!.name]));
    const slots = new Map<string, tf.Tensor>();
    for (const [key, t] of [...tensors]) {
      if (!key.startsWith('optimizer/')) continue;
      const slotKey = key.slice('optimizer/'.length);
      const cut = slotKey.lastIndexOf('/');
      const variableName = rename.get(slotKey.slice(0, cut)) ?? slotKey.slice(0, cut);
      slots.set(`${variableName}/${slotKey.slice(cut + 1)}`, take(key));
    }
    optimizer.setState({ iterations: state.optimizer.iterations, slots });
    slots.forEach((t) => t.dispose());
    state.callbacks.forEach((saved, i) => {
      const callback = callbacks[i];
      if (!callback || callback.type !== saved.type) throw new Error(`checkpoint callback ${i} is ${saved.type}, the config's ${callback?.type}`);
      const own = Array.from({ length: saved.tensorCount }, (_, j) => take(`callbacks/${i}/${j}`));
      callback.setState({ json: saved.json, tensors: own });
    });
    tensors.forEach((t) => t.dispose());
    epoch = state.epoch;
    stepInEpoch = state.stepInEpoch;
    globalStep = state.globalStep;
    trainSums = state.trainSums;
    learningRateScale = state.learningRateScale;
    stopTraining = state.stopTraining;
    history.push(...state.history);
    progress.message(`Resumed after epoch ${epoch}${stepInEpoch ? `, step ${stepInEpoch}` : ''} (optimizer step ${globalStep})`);
  };

  /** One optimizer step; returns [loss, correct, in top 5] of the batch. Disposes the batch. */
  const trainStep = async (batch: Batch): Promise<Float32Array> => {
    const lr = learningRate();
    let stats: tf.Tensor | undefined;
    const { value, grads } = withSeededRandom(stepSeed(seed, epoch, stepInEpoch), () =>
      tf.tidy(() =>
        tf.variableGrads(() => {
          const logits = model.apply(batch.x, { training: true }) as tf.Tensor;
          const loss = crossEntropy(logits, batch.yOneHot ?? batch.y, lossParams);
          stats = tf.keep(batchStats(logits, batch.y, loss));
          return loss;
        }, variables),
      ),
    );
    const batchSize = batch.x.shape[0]!;
    disposeBatch(batch);
    const values = (await stats!.data()) as Float32Array;
    stats!.dispose();
    value.dispose();
    try {
      if (!Number.isFinite(values[0]!)) throw new NonFiniteLossError(values[0]!, epoch, stepInEpoch, globalStep);
      optimizer.applyGradients(trainable, variables.map((v) => grads[v.name]!), lr);
    } finally {
      Object.values(grads).forEach((g) => g.dispose());
    }
    addBatch(trainSums, values, batchSize);
    return values;
  };

  const evaluate = async (split: Split, prefix: string): Promise<Record<string, number> | undefined> => {
    if (dataset.info.counts[split] === 0) return undefined;
    const sums = emptySums();
    for await (const batch of prefetch(dataset.batches(split, { batchSize: evalBatchSize, training: false, seed, epoch }))) {
      const stats = tf.tidy(() => {
        const logits = model.apply(batch.x, { training: false }) as tf.Tensor;
        return batchStats(logits, batch.y, crossEntropy(logits, batch.y, lossParams));
      });
      const batchSize = batch.x.shape[0]!;
      disposeBatch(batch);
      addBatch(sums, await stats.data(), batchSize);
      stats.dispose();
    }
    return means(sums, metrics, prefix);
  };

  try {
    if (options.resume) await restoreCheckpoint();

    while (epoch < config.epochs && !stopTraining) {
      progress.epochStart(epoch, config.epochs, stepsPerEpoch);
      const started = performance.now();
      let imagesThisSession = 0;
      let skip = stepInEpoch; // a resumed epoch replays the data stream up to where it stopped
      if (skip === 0) trainSums = emptySums();
      let killed = false;

      for await (const batch of prefetch(dataset.batches('train', { batchSize: config.batch_size, training: true, seed, epoch }))) {
        if (skip > 0) {
          skip -= 1;
          disposeBatch(batch);
          continue;
        }
        if (stepInEpoch >= stepsPerEpoch) {
          disposeBatch(batch);
          break;
        }
        imagesThisSession += batch.x.shape[0]!;
        await trainStep(batch);
        stepInEpoch += 1;
        globalStep += 1;
        if (options.onStep) await options.onStep(globalStep, means(trainSums, metrics));
        const seconds = (performance.now() - started) / 1000;
        progress.step(stepInEpoch, means(trainSums, metrics), imagesThisSession / seconds);
        // Let the event loop turn: signal handlers (Ctrl-C) only run between macrotasks, and a
        // loop of resolved awaits would otherwise hold them off until the epoch ends.
        await new Promise((done) => setImmediate(done));
        if (options.shouldStop?.()) {
          killed = true;
          break;
        }
      }
      if (killed) {
        await saveCheckpoint();
        return { status: 'KILLED', history, stoppedEarly: false };
      }

      const epochTime = (performance.now() - started) / 1000;
      const validation = await evaluate('validation', 'val_');
      const logs: Record<string, number> = {
        ...means(trainSums, metrics),
        ...validation,
        learning_rate: learningRate(),
        images_per_second: imagesThisSession / epochTime,
        epoch_time: epochTime,
      };
      for (const callback of callbacks) callback.onEpochEnd?.(epoch, logs, control);
      progress.epochEnd(epoch, logs);
      history.push(logs);
      epoch += 1;
      stepInEpoch = 0;
      // Metrics first: a hard kill between the two repeats an epoch rather than losing its line.
      await options.onEpochEnd?.(epoch, logs);
      await saveCheckpoint();
      if (options.shouldStop?.() && epoch < config.epochs) return { status: 'KILLED', history, stoppedEarly: false };
    }

    for (const callback of callbacks) callback.onTrainEnd?.(control);
    const test = await evaluate('test', 'test_');
    return { status: 'FINISHED', history, ...(test ? { test } : {}), stoppedEarly: stopTraining };
  } finally {
    optimizer.dispose();
    callbacks.forEach((c) => c.dispose());
  }
}
