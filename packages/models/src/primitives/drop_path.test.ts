import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { withRandom } from './with-random.testing.ts';
import { DropPath } from './drop_path.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('drop_path', () => {
  const x = tf.ones([400, 3, 5]);
  const rows = (layer: DropPath, draw = 0.3) =>
    withRandom([draw], () => (layer.apply(x, { training: true }) as tf.Tensor).arraySync() as number[][][]);

  it('drops whole examples: every value of an example is 0 or 1/(1-rate), about rate of them dropped', () => {
    const out = rows(new DropPath({ rate: 0.25, seed: 1 }));
    const perExample = out.map((example) => new Set(example.flat()));
    perExample.forEach((values) => expect(values.size).toBe(1));
    const kept = perExample.map((values) => [...values][0]!);
    expect(new Set(kept)).toEqual(new Set([0, Math.fround(1 / 0.75)]));
    const dropped = kept.filter((v) => v === 0).length / kept.length;
    expect(dropped).toBeGreaterThan(0.17);
    expect(dropped).toBeLessThan(0.33);
  });

  it('is seeded like dropout (Math.random, which the trainer seeds per step, mixed with its own seed); the identity at inference', () => {
    const a = new DropPath({ rate: 0.5, seed: 1 });
    expect(rows(a)).toEqual(rows(a));
    expect(rows(a, 0.3)).not.toEqual(rows(a, 0.7));
    expect(rows(a)).not.toEqual(rows(new DropPath({ rate: 0.5, seed: 2 })));
    expect(Array.from((a.apply(x) as tf.Tensor).dataSync()).every((v) => v === 1)).toBe(true);
  });
});
