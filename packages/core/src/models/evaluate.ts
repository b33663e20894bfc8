import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { MlflowClient } from '@tessera/mlflow';
import { LocalRunStore, readMetrics } from '../tracking/local-store.ts';
import { readSyncStates, syncRun } from '../tracking/sync.ts';
import type { Dataset, Registries, Split } from '../registry/kinds.ts';
import type { ExperimentConfig } from '../schema/types.ts';
import type { Predictor } from './predictor.ts';

/* ------------------------------------------------------------------------------------------ *
 * `exp evaluate`: a model on a split of a dataset, with what Ludwig's evaluate + visualize    *
 * show: loss and accuracy, a confusion matrix, per-class precision/recall/F1 and the pairs    *
 * of classes most often confused.                                                             *
 * ------------------------------------------------------------------------------------------ */

export interface ClassReport {
  class: string;
  precision: number;
  recall: number;
  f1: number;
  /** Examples of this class in the split. */
  support: number;
}

export interface ConfusedPair {
  actual: string;
  predicted: string;
  count: number;
  /** Share of the true class's examples predicted as `predicted`. */
  rate: number;
}

export interface Evaluation {
  split: string;
  count: number;
  /** Mean cross-entropy of the true class (no label smoothing), accuracy, top-5 accuracy, macro P/R/F1. */
  metrics: Record<string, number>;
  /** matrix[true][predicted] counts. */
  matrix: number[][];
  perClass: ClassReport[];
  mostConfused: ConfusedPair[];
}

/** matrix[true][predicted] counts. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, numClasses: number): number[][] {
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) matrix[labels[i]!]![predictions[i]!]! += 1;
  return matrix;
}

/** Precision, recall and F1 per class from a confusion matrix (0 where undefined, as scikit-learn's zero_division=0). */
export function classReport(matrix: readonly (readonly number[])[], classes: readonly string[]): ClassReport[] {
  return matrix.map((row, c) => {
    const truePositives = row[c]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = matrix.reduce((sum, r) => sum + r[c]!, 0);
    const precision = predicted > 0 ? truePositives / predicted : 0;
    const recall = support > 0 ? truePositives / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { class: classes[c] ?? `class_${c}`, precision, recall, f1, support };
  });
}

/** The off-diagonal cells with the most examples, largest first (ties by rate, then class order). */
export function mostConfused(matrix: readonly (readonly number[])[], classes: readonly string[], k = 10): ConfusedPair[] {
  const pairs: ConfusedPair[] = [];
  matrix.forEach((row, i) => {
    const support = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      if (i !== j && count > 0) pairs.push({ actual: classes[i]!, predicted: classes[j]!, count, rate: count / support });
    });
  });
  return pairs.sort((a, b) => b.count - a.count || b.rate - a.rate).slice(0, k);
}

/**
 * Runs the predictor over `split` of `dataset`, which must serve raw images (its transforms
 * emptied): the model's own saved preprocessing is applied, as `exp predict` does.
 */
export async function evaluatePredictor(predictor: Predictor, dataset: Dataset, split: Split, options: { batchSize?: number; seed?: number } = {}): Promise<Evaluation> {
  const batchSize = options.batchSize ?? 256;
  const n = predictor.numClasses;
  const labels: number[] = [];
  const predictions: number[] = [];
  let lossSum = 0;
  let top5 = 0;
  for await (const batch of dataset.batches(split, { batchSize, training: false, seed: options.seed ?? 0, epoch: 0 })) {
    const x = batch.x as tf.Tensor4D;
    const [count, ...shape] = x.shape;
    const pixels = (await x.data()) as Float32Array;
    const y = await batch.y.data();
    x.dispose();
    batch.y.dispose();
    batch.yOneHot?.dispose();
    const probabilities = await predictor.probabilities({ pixels, count, shape }, batchSize);
    for (let i = 0; i < count; i++) {
      const row = probabilities.subarray(i * n, (i + 1) * n);
      const label = y[i]!;
      let best = 0;
      let above = 0;
      for (let c = 0; c < n; c++) {
        if (row[c]! > row[best]!) best = c;
        if (row[c]! > row[label]!) above += 1;
      }
      labels.push(label);
      predictions.push(best);
      lossSum += -Math.log(Math.max(row[label]!, 1e-7));
      if (above < 5) top5 += 1;
    }
  }
  const matrix = confusionMatrix(labels, predictions, n);
  const perClass = classReport(matrix, predictor.classes);
  const count = labels.length;
  const correct = matrix.reduce((sum, row, c) => sum + row[c]!, 0);
  const present = perClass.filter((r) => r.support > 0);
  const mean = (key: 'precision' | 'recall' | 'f1') => present.reduce((sum, r) => sum + r[key], 0) / Math.max(1, present.length);
  return {
    split,
    count,
    metrics: {
      loss: count > 0 ? lossSum / count : NaN,
      accuracy: count > 0 ? correct / count : NaN,
      top5_accuracy: count > 0 ? top5 / count : NaN,
      macro_precision: mean('precision'),
      macro_recall: mean('recall'),
      macro_f1: mean('f1'),
    },
    matrix,
    perClass,
    mostConfused: mostConfused(matrix, predictor.classes),
  };
}

function csvRow(cells: (string | number)[]): string {
  return cells.map((cell) => (/[",\n]/.test(String(cell)) ? `"${String(cell).replaceAll('"', '""')}"` : String(cell))).join(',');
}

/** The files an evaluation leaves: confusion_matrix.{png,csv}, per_class.csv, most_confused.csv, report.json. */
export async function evaluationArtifacts(evaluation: Evaluation, classes: readonly string[], title: string): Promise<Map<string, Uint8Array | string>> {
  const files = new Map<string, Uint8Array | string>();
  // The optional entry point `@tessera/core/plots`, loaded only here (Vega and resvg stay out of core's index).
  const { confusionMatrixSpec, renderChart } = await import('../tracking/plots.ts');
  const chart = await renderChart(confusionMatrixSpec(evaluation.matrix, classes, title));
  files.set('confusion_matrix.png', chart.png);
  files.set('confusion_matrix.csv', `${[csvRow(['true\\predicted', ...classes]), ...evaluation.matrix.map((row, i) => csvRow([classes[i]!, ...row]))].join('\n')}\n`);
  files.set(
    'per_class.csv',
    `${[csvRow(['class', 'precision', 'recall', 'f1', 'support']), ...evaluation.perClass.map((r) => csvRow([r.class, r.precision, r.recall, r.f1, r.support]))].join('\n')}\n`,
  );
  files.set('most_confused.csv', `${[csvRow(['true', 'predicted', 'count', 'rate']), ...evaluation.mostConfused.map((p) => csvRow([p.actual, p.predicted, p.count, p.rate]))].join('\n')}\n`);
  files.set('report.json', `${JSON.stringify({ split: evaluation.split, count: evaluation.count, metrics: evaluation.metrics, per_class: evaluation.perClass, most_confused: evaluation.mostConfused }, null, 1)}\n`);
  return files;
}

/** The terminal summary: metrics, the weakest classes, the most-confused pairs. */
export function formatEvaluation(evaluation: Evaluation, rows = 10): string {
  const m = evaluation.metrics;
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const lines = [
    `${evaluation.count} examples (${evaluation.split}): loss ${m.loss!.toFixed(4)}, accuracy ${pct(m.accuracy!)}, top-5 ${pct(m.top5_accuracy!)}, macro F1 ${m.macro_f1!.toFixed(4)}`,
    '',
    `${'class'.padEnd(24)}${'precision'.padStart(10)}${'recall'.padStart(10)}${'f1'.padStart(10)}${'support'.padStart(10)}`,
  ];
  const sorted = [...evaluation.perClass].sort((a, b) => a.f1 - b.f1);
  const shown = sorted.length > rows ? sorted.slice(0, rows) : sorted;
  for (const r of shown) {
    lines.push(`${r.class.slice(0, 23).padEnd(24)}${r.precision.toFixed(4).padStart(10)}${r.recall.toFixed(4).padStart(10)}${r.f1.toFixed(4).padStart(10)}${String(r.support).padStart(10)}`);
  }
  if (sorted.length > rows) lines.push(`(the ${rows} lowest-F1 of ${sorted.length} classes; all in per_class.csv)`);
  if (evaluation.mostConfused.length > 0) {
    lines.push('', 'most confused (true -> predicted):');
    for (const p of evaluation.mostConfused.slice(0, rows)) lines.push(`  ${p.actual} -> ${p.predicted}: ${p.count} (${pct(p.rate)} of ${p.actual})`);
  }
  return `${lines.join('\n')}\n`;
}

/** `eval_` for the run's own test split (final model), `eval_<name>_` for any other evaluation (RecordEvaluationOptions.name). */
export function evaluationMetricPrefix(name: string): string {
  return name === 'test' ? 'eval_' : `eval_${name.replace(/[^A-Za-z0-9_]/g, '_')}_`;
}

export interface RecordEvaluationOptions {
  /**
   * Artifacts go under eval/<name>/ (e.g. `test`, `validation`, `cifar100-test`, `test-best`), and
   * the metrics are `eval_<name>_<metric>` (`eval_validation_accuracy`), except for `test`: the run's
   * own test split, final model, is plain `eval_<metric>`. So evaluating another split, dataset or
   * model never overwrites another evaluation's numbers.
   */
  name: string;
  /** A client for each MLflow server the run was recorded in (default: from the environment, for that URI). */
  clientFor?: (trackingUri: string) => MlflowClient;
  log?: (message: string) => void;
}

/**
 * Adds an evaluation to a finished run: `eval_*` metrics (at the run's last step) and the files
 * under eval/<name>/ in the local store, then, when the run was recorded in MLflow, the same
 * there through the loss-free sync (so an unreachable server only delays it: exp sync RUN).
 */
export async function recordEvaluation(runDir: string, evaluation: Evaluation, files: Map<string, Uint8Array | string>, options: RecordEvaluationOptions): Promise<{ mlflow: boolean }> {
  const store = await LocalRunStore.attach(runDir);
  const step = (await readMetrics(runDir)).at(-1)?.step ?? 0;
  const prefix = evaluationMetricPrefix(options.name);
  const metrics = Object.fromEntries(Object.entries(evaluation.metrics).filter(([, v]) => Number.isFinite(v)).map(([key, value]) => [`${prefix}${key}`, value]));
  await store.logMetrics(metrics, step);
  for (const [file, bytes] of files) await store.logArtifact(`eval/${options.name}/${file}`, { bytes });
  await store.setTags({ 'tessera.eval.last': options.name, [`tessera.eval.${options.name}.count`]: String(evaluation.count) });
  const clientFor = options.clientFor ?? ((trackingUri: string) => MlflowClient.fromEnv(process.env, { trackingUri }));
  let mlflow = false;
  for (const [trackingUri, state] of Object.entries(await readSyncStates(runDir))) {
    if (!state.runId) continue;
    try {
      await syncRun(runDir, { client: clientFor(trackingUri) });
      mlflow = true;
    } catch (error) {
      options.log?.(`warning: MLflow (${trackingUri}) did not take the evaluation (${(error as Error).message}); send it later with: exp sync ${runDir}`);
    }
  }
  return { mlflow };
}

/**
 * The dataset a data section describes, serving raw images (0..255, no transforms): a model
 * applies its own saved preprocessing, so its statistics are the training run's, not new ones.
 */
export async function rawDataset(
  data: ExperimentConfig['data'],
  context: { registries: Registries; configDir: string; seed: number; log: (message: string) => void },
): Promise<Dataset> {
  const { type, ...params } = data;
  return context.registries.datasets.get(type).create({ ...params, transforms: [] }, context);
}

/** Where the run's experiment file was (its data paths are relative to it), from artifacts/run.json. */
export async function runConfigDir(runDir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(join(runDir, 'artifacts', 'run.json'), 'utf8')) as { configDir?: string }).configDir;
  } catch {
    return undefined;
  }
}
