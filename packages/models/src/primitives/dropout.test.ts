import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { withRandom } from './with-random.testing.ts';
import { Dropout, dropoutMask } from './dropout.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('dropout', () => {
  const x = tf.ones([4, 256]);
  const mask = (layer: Dropout) => Array.from((layer.apply(x, { training: true }) as tf.Tensor).dataSync());

  it('is the identity at inference and scales kept units by 1/(1-rate) in training', () => {
    const layer = new Dropout({ rate: 0.25, seed: 1 });
    expect(Array.from((layer.apply(x) as tf.Tensor).dataSync())).toEqual(Array(1024).fill(1));
    const values = mask(layer);
    expect(new Set(values)).toEqual(new Set([0, Math.fround(1 / 0.75)]));
    const dropped = values.filter((v) => v === 0).length / values.length;
    expect(dropped).toBeGreaterThan(0.18);
    expect(dropped).toBeLessThan(0.32);
  });

  it('draws each mask from Math.random (the trainer seeds it per step) mixed with its own seed', () => {
    const a = new Dropout({ rate: 0.5, seed: 1 });
    const b = new Dropout({ rate: 0.5, seed: 2 });
    expect(withRandom([0.3], () => mask(a))).toEqual(withRandom([0.3], () => mask(a)));
    expect(withRandom([0.3], () => mask(a))).not.toEqual(withRandom([0.7], () => mask(a)));
    expect(withRandom([0.3], () => mask(a))).not.toEqual(withRandom([0.3], () => mask(b)));
  });

  it('passes the gradient through the same mask it applied', () => {
    const layer = new Dropout({ rate: 0.4, seed: 3 });
    const input = tf.randomNormal([8, 64], 0, 1, 'float32', 5);
    const run = (t: tf.Tensor) => layer.apply(t, { training: true }) as tf.Tensor;
    const out = withRandom([0.6], () => run(input));
    const grad = withRandom([0.6], () => tf.grad(run)(input, tf.onesLike(input)));
    const ratio = Array.from(tf.div(out, input).dataSync());
    Array.from(grad.dataSync()).forEach((g, i) => expect(g).toBeCloseTo(ratio[i]!, 5));
    expect(new Set(Array.from(grad.dataSync()))).toEqual(new Set([0, Math.fround(1 / 0.6)]));
  });

  it('makes masks of any size (odd too) whose drop fraction is the rate', () => {
    for (const rate of [0.2, 0.5, 0.9]) {
      const mask = dropoutMask([3, 100001], rate, 17);
      expect(mask.shape).toEqual([3, 100001]);
      const values = mask.dataSync();
      let dropped = 0;
      for (const v of values) if (v === 0) dropped++;
      else expect(v).toBe(Math.fround(1 / (1 - rate)));
      // 300,003 units: the binomial's standard deviation is below 0.001.
      expect(Math.abs(dropped / values.length - rate)).toBeLessThan(0.004);
    }
    expect(Array.from(dropoutMask([5], 0.5, 3).dataSync())).toEqual(Array.from(dropoutMask([5], 0.5, 3).dataSync()));
    expect(Array.from(dropoutMask([64], 0.5, 3).dataSync())).not.toEqual(Array.from(dropoutMask([64], 0.5, 4).dataSync()));
  });
});
