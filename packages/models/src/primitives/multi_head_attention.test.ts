import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildModel,
  createMemoryDataset,
  createRegistries,
  loadExperiment,
  registerCombinators,
  registerEngine,
  train,
  type ModelConfig,
} from '@tessera/core';
import { registerModels } from '../index.ts';
import { applyDropout } from './dropout.ts';
import { selfAttention, type SelfAttentionOptions } from './multi_head_attention.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const BATCH = 3;
const SEQUENCE = 5;
const DIM = 8;
const OPTIONS: SelfAttentionOptions = { numHeads: 2, keyDim: 3, valueDim: 4, rate: 0, seed: 0 };

function uniform(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

/** x, the four 2-D kernels and their biases, seeded. */
function inputs(o: SelfAttentionOptions, batch = BATCH, sequence = SEQUENCE) {
  const h = o.numHeads;
  const x = uniform([batch, sequence, DIM], 1);
  const kernels = [
    uniform([DIM, h * o.keyDim], 2),
    uniform([DIM, h * o.keyDim], 3),
    uniform([DIM, h * o.valueDim], 4),
    uniform([h * o.valueDim, DIM], 5),
  ];
  const biases = [uniform([h * o.keyDim], 6), uniform([h * o.keyDim], 7), uniform([h * o.valueDim], 8), uniform([DIM], 9)];
  return { x, kernels, biases };
}

/** The textbook composite, differentiated by TF.js' autodiff: the independent reference. */
function naive(x: tf.Tensor, kernels: tf.Tensor[], biases: tf.Tensor[], o: SelfAttentionOptions): tf.Tensor {
  const [batch, sequence] = x.shape as [number, number];
  const heads = (t: tf.Tensor, size: number) => tf.transpose(t.reshape([batch, sequence, o.numHeads, size]), [0, 2, 1, 3]);
  const project = (n: number, size: number) => {
    const y = tf.matMul(x.reshape([batch * sequence, DIM]), kernels[n]!);
    return heads(biases.length ? tf.add(y, biases[n]!) : y, size);
  };
  const q = tf.div(project(0, o.keyDim), Math.sqrt(o.keyDim));
  let w = tf.softmax(tf.matMul(q, project(1, o.keyDim), false, true));
  if (o.rate > 0) w = applyDropout(w, o.rate, o.seed);
  const attended = tf.transpose(tf.matMul(w, project(2, o.valueDim)), [0, 2, 1, 3]).reshape([batch * sequence, o.numHeads * o.valueDim]);
  const y = tf.matMul(attended, kernels[3]!);
  return (biases.length ? tf.add(y, biases[3]!) : y).reshape([batch, sequence, DIM]);
}

/** Largest |a - b| relative to b's largest value, or absolute where b is ~0 (the key bias' gradient is: softmax ignores it). */
function maxRelativeDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / Math.max(1, tf.max(tf.abs(b)).dataSync()[0]!));
}

describe('selfAttention (multi_head_attention\'s op with a hand-written gradient)', () => {
  it.each([
    ['no dropout, biases', { ...OPTIONS }, true],
    ['attention dropout 0.3, biases', { ...OPTIONS, rate: 0.3, seed: 1234 }, true],
    ['no biases', { ...OPTIONS }, false],
  ] as const)('equals the autodiff of the textbook composite, output and every gradient (%s)', (_, o, withBias) => {
    const { x, kernels, biases: allBiases } = inputs(o);
    const biases = withBias ? allBiases : [];
    const dy = uniform([BATCH, SEQUENCE, DIM], 10);
    const all = [x, ...kernels, ...biases];
    const gradients = (f: typeof naive) =>
      tf.grads((...args: tf.Tensor[]) => tf.sum(tf.mul(f(args[0]!, args.slice(1, 5), args.slice(5), o), dy)))(all);
    const expected = gradients(naive);
    const actual = gradients(selfAttention);
    expect(maxRelativeDifference(selfAttention(x, kernels, biases, o), naive(x, kernels, biases, o))).toBeLessThan(1e-6);
    expect(actual).toHaveLength(expected.length);
    actual.forEach((g, i) => {
      expect(g.shape, `gradient ${i}`).toEqual(expected[i]!.shape);
      expect(maxRelativeDifference(g, expected[i]!), `gradient ${i}`).toBeLessThan(1e-5);
    });
    tf.dispose([...all, dy, ...expected, ...actual]);
  });

  it('holds far less memory in a training step of 8 layers than autodiff of the composite, and leaks nothing', async () => {
    // The cause of ViT-small's 13 GiB: autodiff kept every [batch, heads, sequence, sequence]
    // intermediate of every layer, and every gradient, until the end of the backward pass.
    const o = { ...OPTIONS, rate: 0.1, seed: 5 };
    const { x, kernels, biases } = inputs(o, 4, 64); // the [4, 2, 64, 64] weights dominate, as in a ViT
    const variables = [...kernels, ...biases].map((t) => tf.variable(t));
    const step = (f: typeof naive) => () => {
      const layers = (input: tf.Tensor) => {
        let h = input;
        for (let layer = 0; layer < 8; layer++) h = tf.add(h, f(h, variables.slice(0, 4), variables.slice(4), o));
        return tf.sum(tf.square(h));
      };
      const { value, grads } = tf.variableGrads(() => layers(x) as tf.Scalar, variables);
      tf.dispose([value, ...Object.values(grads)]);
    };
    const before = tf.memory().numTensors;
    const naivePeak = (await tf.profile(step(naive))).peakBytes;
    const fusedPeak = (await tf.profile(step(selfAttention))).peakBytes;
    expect(tf.memory().numTensors).toBe(before);
    expect(fusedPeak).toBeLessThan(0.5 * naivePeak);
    tf.dispose([x, ...kernels, ...biases, ...variables]);
  });
});

describe('a small ViT through the real trainer', () => {
  it('keeps the number of live tensors flat across steps', async () => {
    // experiments/vit-small.yaml's blocks (attention with dropout, drop-free MLP, head) on
    // 12x12 images: 4 patches of 6x6.
    const registries = registerModels(registerCombinators(createRegistries()));
    registerEngine(registries);
    const loaded = loadExperiment(fileURLToPath(new URL('../../../../experiments/vit-small.yaml', import.meta.url)));
    const config = loaded.config as { vars?: Record<string, unknown>; model: ModelConfig };
    const shape = [12, 12, 3];
    const model = buildModel(config.model, { registries, inputShape: shape, seed: 42, locate: loaded.locate, vars: { ...config.vars, num_classes: 5 } });
    const n = 32;
    const split = (seed: number) => ({
      x: uniform([n, ...shape], seed).dataSync() as Float32Array,
      y: Int32Array.from({ length: n }, (_, i) => i % 5),
    });
    const dataset = createMemoryDataset('random', shape, 5, { train: split(1), validation: split(2), test: split(3) });
    const counts: number[] = [];
    const result = await train({
      model,
      dataset,
      registries,
      seed: 7,
      progress: { epochStart() {}, step() {}, epochEnd() {}, message() {} },
      train: { epochs: 2, batch_size: 8, optimizer: { type: 'adamw', learning_rate: 0.001, weight_decay: 1e-4 } },
      onStep: () => void counts.push(tf.memory().numTensors),
    });
    expect(result.status).toBe('FINISHED');
    expect(counts).toHaveLength(8);
    // Nothing grows from step to step; the second epoch repeats the first exactly (its last step
    // holds 2 fewer: the epoch's running metric sums are handed over).
    expect(Math.max(...counts)).toBe(counts[0]);
    expect(counts.slice(4)).toEqual(counts.slice(0, 4));
    expect(Number.isFinite(result.history[1]!.loss)).toBe(true);
    model.dispose();
  });
});
