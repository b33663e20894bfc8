import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { countCorrect, countInTopK } from './metrics.ts';
import { crossEntropy } from './losses.ts';

describe('accuracy and top-5 accuracy', () => {
  // 7 classes; the label's rank (0 = highest) is 0, 4, 5 and tied at the 5th place.
  const logits = tf.tensor2d([
    [9, 1, 2, 3, 4, 5, 6], // label 0: rank 0
    [0, 1, 2, 3, 4, 5, 6], // label 2: 4 classes higher -> in top 5
    [0, 1, 2, 3, 4, 5, 6], // label 1: 5 classes higher -> out
    [0, 4, 4, 3, 5, 6, 7], // label 1: 3 higher, tied with class 2 at the boundary -> in (in_top_k)
  ]);
  const labels = tf.tensor1d([0, 2, 1, 1], 'int32');

  it('counts arg-max hits', () => {
    expect(countCorrect(logits, labels).dataSync()[0]).toBe(1);
  });

  it('counts labels among the 5 highest scores, ties included', () => {
    expect(countInTopK(logits, labels, 5).dataSync()[0]).toBe(3);
    expect(countInTopK(logits, labels, 1).dataSync()[0]).toBe(1);
  });
});

describe('cross-entropy', () => {
  // ln(e^2 + e^1 + e^0) - 2 = 0.40760596 (label 0); with smoothing 0.3 over 3 classes the target
  // is [0.8, 0.1, 0.1]: 0.8*0.40760596 + 0.1*1.40760596 + 0.1*2.40760596 = 0.70760596.
  const logits = tf.tensor2d([[2, 1, 0]]);

  it('from logits, sparse labels', () => {
    expect(crossEntropy(logits, tf.tensor1d([0], 'int32')).dataSync()[0]).toBeCloseTo(0.40760596, 5);
  });

  it('with label smoothing', () => {
    expect(crossEntropy(logits, tf.tensor1d([0], 'int32'), { label_smoothing: 0.3 }).dataSync()[0]).toBeCloseTo(0.70760596, 5);
  });

  it('with soft labels (mixup) equal to the smoothed targets', () => {
    expect(crossEntropy(logits, tf.tensor2d([[0.8, 0.1, 0.1]])).dataSync()[0]).toBeCloseTo(0.70760596, 5);
  });

  it('from probabilities', () => {
    expect(crossEntropy(tf.tensor2d([[0.5, 0.25, 0.25]]), tf.tensor1d([1], 'int32'), { from_logits: false }).dataSync()[0]).toBeCloseTo(Math.log(4), 5);
  });
});
