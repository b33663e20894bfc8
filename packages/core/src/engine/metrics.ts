import * as tf from '@tensorflow/tfjs';

/** Number of examples whose arg-max prediction equals the label (Keras sparse_categorical_accuracy). */
export function countCorrect(predictions: tf.Tensor, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.equal(tf.argMax(predictions, -1), tf.cast(labels, 'int32')).toFloat()) as tf.Scalar);
}

/**
 * Number of examples whose label is among the k highest predictions. Like tf.math.in_top_k
 * (which Keras' top-k accuracy uses), ties at the boundary count as in: the label is in the
 * top k when fewer than k classes score strictly higher than it.
 */
export function countInTopK(predictions: tf.Tensor, labels: tf.Tensor1D, k: number): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = predictions.shape[predictions.shape.length - 1]!;
    const target = tf.sum(tf.mul(predictions, tf.oneHot(tf.cast(labels, 'int32'), numClasses)), -1, true);
    const higher = tf.sum(tf.greater(predictions, target).toFloat(), -1);
    return tf.sum(tf.less(higher, k).toFloat()) as tf.Scalar;
  });
}

/** The metrics Tessera computes, by their YAML name. */
export const METRIC_NAMES = ['accuracy', 'top5_accuracy'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/**
 * The metrics a run logs at the end of every epoch (trainer.ts): the loss and each of
 * `train.metrics` (default: every metric), their `val_` twins, and the learning rate and speed.
 */
export function epochMetricNames(train: { metrics?: readonly string[] } | undefined): string[] {
  const metrics = ['loss', ...(train?.metrics ?? METRIC_NAMES)];
  return [...metrics, ...metrics.map((m) => `val_${m}`), 'learning_rate', 'images_per_second', 'epoch_time'];
}

/** Sums over the examples seen so far; JSON-serialisable so a checkpoint can carry it. */
export interface MetricSums {
  examples: number;
  loss: number;
  correct: number;
  top5: number;
}

export const emptySums = (): MetricSums => ({ examples: 0, loss: 0, correct: 0, top5: 0 });

/**
 * Loss and counts of one batch packed in one tensor so that a step reads them back with a
 * single device sync: [mean loss, correct, in top 5].
 */
export function batchStats(predictions: tf.Tensor, labels: tf.Tensor1D, loss: tf.Scalar): tf.Tensor1D {
  return tf.tidy(() =>
    tf.stack([loss, countCorrect(predictions, labels), countInTopK(predictions, labels, 5)]) as tf.Tensor1D,
  );
}

export function addBatch(sums: MetricSums, stats: ArrayLike<number>, batchSize: number): void {
  sums.examples += batchSize;
  sums.loss += stats[0]! * batchSize;
  sums.correct += stats[1]!;
  sums.top5 += stats[2]!;
}

/** Keras-named means, e.g. {loss, accuracy, top5_accuracy} or with a `val_` prefix. */
export function means(sums: MetricSums, metrics: readonly MetricName[], prefix = ''): Record<string, number> {
  const n = Math.max(sums.examples, 1);
  const out: Record<string, number> = { [`${prefix}loss`]: sums.loss / n };
  if (metrics.includes('accuracy')) out[`${prefix}accuracy`] = sums.correct / n;
  if (metrics.includes('top5_accuracy')) out[`${prefix}top5_accuracy`] = sums.top5 / n;
  return out;
}
