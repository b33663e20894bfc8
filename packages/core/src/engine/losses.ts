import * as tf from '@tensorflow/tfjs';

export interface CrossEntropyParams {
  /** The model outputs logits (the reference does); otherwise probabilities. */
  from_logits?: boolean;
  /** Targets become (1 - s) * one_hot + s / num_classes. */
  label_smoothing?: number;
}

// Keras clips probabilities to [eps, 1 - eps] before the log when from_logits is false.
const PROBABILITY_EPSILON = 1e-7;

/**
 * Mean categorical cross-entropy. `labels` is either int32 class indices [batch] (sparse) or
 * float32 target distributions [batch, classes] (soft labels, e.g. from mixup or cutmix).
 */
export function crossEntropy(
  predictions: tf.Tensor,
  labels: tf.Tensor,
  params: CrossEntropyParams = {},
): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = predictions.shape[predictions.shape.length - 1]!;
    const logProbs =
      params.from_logits === false
        ? tf.log(tf.clipByValue(predictions, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON))
        : tf.logSoftmax(predictions);
    let targets = labels.rank === 1 ? tf.oneHot(tf.cast(labels, 'int32'), numClasses).toFloat() : labels;
    const smoothing = params.label_smoothing ?? 0;
    if (smoothing > 0) targets = tf.add(tf.mul(targets, 1 - smoothing), smoothing / numClasses);
    return tf.neg(tf.mean(tf.sum(tf.mul(targets, logProbs), -1))) as tf.Scalar;
  });
}
