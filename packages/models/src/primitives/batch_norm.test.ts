import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryDataset, createRegistries, crossEntropy, exportModel, importModel, modelSummary, readCheckpoint, registerEngine, train } from '@tessera/core';
import { BatchNorm } from './batch_norm.ts';
import { Dense } from './dense.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});
const work = mkdtempSync(join(tmpdir(), 'tessera-batch-norm-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const x = tf.tensor2d([
  [1, 10],
  [3, 20],
  [5, 60],
  [7, 30],
]);
// Per column: mean [4, 30], biased variance [5, 350].

describe('batch_norm (Keras semantics)', () => {
  it('normalises with the batch statistics in training and moves the moving ones by momentum', () => {
    const layer = new BatchNorm({ momentum: 0.9, epsilon: 1e-3 });
    const y = layer.apply(x, { training: true }) as tf.Tensor;
    const want = [
      [1, 10],
      [3, 20],
      [5, 60],
      [7, 30],
    ].map((row) => row.map((v, c) => (v - [4, 30][c]!) / Math.sqrt([5, 350][c]! + 1e-3)));
    (y.arraySync() as number[][]).forEach((row, i) => row.forEach((v, c) => expect(v).toBeCloseTo(want[i]![c]!, 5)));
    const [gamma, beta, movingMean, movingVariance] = layer.getWeights();
    expect(Array.from(gamma!.dataSync())).toEqual([1, 1]);
    expect(Array.from(beta!.dataSync())).toEqual([0, 0]);
    // moving = 0.9 * moving + 0.1 * batch, from mean 0 and variance 1.
    Array.from(movingMean!.dataSync()).forEach((v, c) => expect(v).toBeCloseTo(0.1 * [4, 30][c]!, 5));
    Array.from(movingVariance!.dataSync()).forEach((v, c) => expect(v).toBeCloseTo(0.9 + 0.1 * [5, 350][c]!, 4));
    expect(layer.trainableWeights.map((w) => w.originalName.split('/').pop())).toEqual(['gamma', 'beta']);
    expect(layer.nonTrainableWeights.map((w) => w.originalName.split('/').pop())).toEqual(['moving_mean', 'moving_variance']);
  });

  it("hand-written training gradient equals autodiff of Keras' formula (x, gamma, beta), any axis", () => {
    for (const [shape, axis] of [[[6, 3, 2, 4], -1], [[5, 4, 3], 1]] as const) {
      const layer = new BatchNorm({ axis, epsilon: 1e-3 });
      const input = tf.randomNormal(shape as unknown as number[], 2, 3, 'float32', 1);
      layer.apply(input, { training: true }); // builds
      const size = shape[axis < 0 ? shape.length + axis : axis]!;
      layer.setWeights([tf.randomNormal([size], 1, 0.5, 'float32', 2), tf.randomNormal([size], 0, 0.5, 'float32', 3), tf.zeros([size]), tf.ones([size])]);
      const [gamma, beta] = layer.trainableWeights.map((w) => w.read());
      const probe = tf.randomNormal(shape as unknown as number[], 0, 1, 'float32', 4);
      const reduce = [...Array(shape.length).keys()].filter((i) => i !== (axis < 0 ? shape.length + axis : axis));
      const broadcast = shape.map((n, i) => (reduce.includes(i) ? 1 : n));
      const formula = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(x, reduce, true);
        return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-3))), g.reshape(broadcast)), b.reshape(broadcast));
      };
      const want = tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(formula(x, g, b), probe)))([input, gamma!, beta!]);
      const dx = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, probe)))(input);
      const close = (a: tf.Tensor, b: tf.Tensor) => expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-4);
      close(dx, want[0]!);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.apply(input, { training: true }) as tf.Tensor, probe)) as tf.Scalar, layer.trainableWeights.map((w) => w.read() as tf.Variable));
      const [dGamma, dBeta] = layer.trainableWeights.map((w) => grads[(w.read() as tf.Variable).name]!);
      close(dGamma!, want[1]!);
      close(dBeta!, want[2]!);
    }
  });

  it('uses (and leaves alone) the moving statistics at inference', () => {
    const layer = new BatchNorm({});
    layer.apply(x); // builds
    layer.setWeights([tf.tensor1d([2, 3]), tf.tensor1d([1, -1]), tf.tensor1d([4, 30]), tf.tensor1d([5, 350])]);
    const y = (layer.apply(x, { training: false }) as tf.Tensor).arraySync() as number[][];
    const xs = x.arraySync();
    y.forEach((row, i) => row.forEach((v, c) => expect(v).toBeCloseTo(([2, 3][c]! * (xs[i]![c]! - [4, 30][c]!)) / Math.sqrt([5, 350][c]! + 1e-3) + [1, -1][c]!, 4)));
    expect(Array.from(layer.getWeights()[2]!.dataSync())).toEqual([4, 30]);
  });

  it('moving statistics are non-trainable params in the summary, trained only by the forward pass, saved in checkpoints, restored on resume, exported', async () => {
    const build = () => {
      const input = tf.input({ shape: [4] });
      const normalised = new BatchNorm({ name: 'bn' }).apply(input) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: new Dense({ units: 2, seed: 1, name: 'logits' }).apply(normalised) as tf.SymbolicTensor });
    };
    const model = build();
    const summary = modelSummary(model);
    expect([summary.trainableParams, summary.nonTrainableParams]).toEqual([8 + 10, 8]);

    const random = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed) * 3 + 5);
    const split = (n: number, seed: number) => ({ x: random(n * 4, seed), y: Int32Array.from({ length: n }, (_, i) => i % 2) });
    const dataset = createMemoryDataset('toy', [4], 2, { train: split(64, 1), validation: split(16, 2), test: split(16, 3) });
    const registries = createRegistries();
    registerEngine(registries);
    const quiet = { epochStart() {}, step() {}, epochEnd() {}, message() {} };
    const config = { epochs: 2, batch_size: 16, optimizer: { type: 'adam', learning_rate: 0.01 } };
    const checkpointDir = join(work, 'checkpoint');
    await train({ model, dataset, train: config, registries, seed: 3, progress: quiet, checkpointDir });
    const moving = model.getLayer('bn').getWeights().slice(2).map((t) => Array.from(t.dataSync()));
    // Moved from 0 and 1 towards the data (mean ~5, variance ~4.5) over 8 steps of momentum 0.99.
    expect(moving[0]!.every((v) => v > 0.2)).toBe(true);
    expect(moving[1]!.every((v) => v !== 1)).toBe(true);

    const saved = await readCheckpoint<{ weightNames: string[] }>(checkpointDir);
    const names = saved!.state.weightNames;
    expect(names.filter((n) => n.startsWith('bn/moving'))).toEqual(['bn/moving_mean', 'bn/moving_variance']);
    expect(Array.from(saved!.tensors.get(`weights/${names.indexOf('bn/moving_mean')}`)!.dataSync())).toEqual(moving[0]);
    saved!.tensors.forEach((t) => t.dispose());

    // Resume into a fresh model (no epoch left to train): the moving statistics are the checkpoint's.
    const resumed = build();
    await train({ model: resumed, dataset, train: { ...config, epochs: 2 }, registries, seed: 3, progress: quiet, checkpointDir, resume: true });
    expect(resumed.getLayer('bn').getWeights().slice(2).map((t) => Array.from(t.dataSync()))).toEqual(moving);

    await exportModel(model, join(work, 'export'));
    const { model: imported } = await importModel(join(work, 'export'));
    expect(imported.getLayer('bn').getWeights().slice(2).map((t) => Array.from(t.dataSync()))).toEqual(moving);
    const probe = tf.tensor2d(random(8, 9), [2, 4]);
    expect(Array.from((imported.predict(probe) as tf.Tensor).dataSync())).toEqual(Array.from((model.predict(probe) as tf.Tensor).dataSync()));
    expect(crossEntropy(model.predict(probe) as tf.Tensor, tf.tensor1d([0, 1], 'int32')).dataSync()[0]).toBeGreaterThan(0);
  });
});
