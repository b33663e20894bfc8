import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, dropoutKeeps, dropoutScale, hasFusedKernel } from '@tessera/core/backend';
import { childSeed } from '@tessera/core/random';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { singleShape, singleTensor } from './common.ts';

export interface DropoutArgs {
  /** Fraction of the units zeroed in training, in [0, 1). */
  rate: number;
  /** Mixed with a draw from Math.random for each training call's mask (see `call`). */
  seed?: number;
  name?: string;
}

/**
 * The scaled keep mask of inverted dropout: each value is 1/(1-rate) where unit i is kept, else 0,
 * decided by the counter-based hash of backend/kernels/ (`dropoutKeeps`' rule: the 16 bits of unit
 * i below ceil(rate * 65536) drop it), so every backend, fused kernel or not, draws the same mask
 * for the same seed. The fallback where the backend has no fused dropout kernel.
 */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  const keeps = dropoutKeeps(shape.reduce((a, b) => a * b, 1), rate, seed);
  const scale = dropoutScale(rate);
  const values = new Float32Array(keeps.length);
  for (let i = 0; i < keeps.length; i++) values[i] = keeps[i]! * scale;
  return tf.tensor(values, shape, 'float32');
}

/**
 * The seed of one training call's mask. A fixed seed would draw the same mask every step.
 * Math.random is what the trainer seeds per (run seed, epoch, step), so masks are reproducible
 * and a resumed run draws the same ones; mixing in the layer's own seed keeps two layers from
 * sharing a stream. Every layer that draws randomness in training (dropout, drop_path, attention
 * dropout) takes its seed here.
 */
export function dropoutMaskSeed(layerSeed: number): number {
  return childSeed(layerSeed, Math.floor(Math.random() * 2147483647));
}

/**
 * x times the mask of (rate, seed). With the fused kernel nothing is uploaded or stored: the
 * backward pass runs the same kernel on dy, which recomputes the same mask from the seed.
 */
export function applyDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (x.dtype !== 'float32' || !hasFusedKernel(FUSED_KERNELS.dropout)) return tf.mul(x, dropoutMask(x.shape, rate, seed));
  const attrs = { rate, seed };
  const dropout = tf.customGrad((...args: unknown[]) => ({
    value: tf.engine().runKernel(FUSED_KERNELS.dropout, { x: args[0] as tf.Tensor }, attrs) as tf.Tensor,
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [
      tf.engine().runKernel(FUSED_KERNELS.dropout, { x: Array.isArray(dy) ? dy[0]! : dy }, attrs) as tf.Tensor,
    ],
  })) as unknown as (x: tf.Tensor) => tf.Tensor;
  return dropout(x);
}

/**
 * What dropout and drop_path share: a rate in [0, 1), the layer's seed, the identity at inference
 * (and at rate 0); in training, `drop` applies the mask of this call's seed (`dropoutMaskSeed`).
 */
export abstract class SeededDrop extends tf.layers.Layer {
  readonly rate: number;
  readonly seed: number;
  /** The YAML type, for messages. */
  readonly #what: string;

  constructor(args: DropoutArgs, what: string) {
    super(args);
    if (!(args.rate >= 0 && args.rate < 1)) throw new Error(`${what}: rate must be in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
    this.seed = args.seed ?? 0;
    this.#what = what;
  }

  /** x times this call's mask, drawn from `seed`. */
  protected abstract drop(x: tf.Tensor, seed: number): tf.Tensor;

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = singleTensor(inputs);
    if (!kwargs?.['training'] || this.rate === 0) return tf.clone(x);
    const seed = dropoutMaskSeed(this.seed);
    return tf.tidy(() => this.drop(x, seed));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, this.#what);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

/** Inverted dropout: in training zeroes `rate` of the values and scales the rest by 1/(1-rate). */
export class Dropout extends SeededDrop {
  static className = 'TesseraDropout';

  constructor(args: DropoutArgs) {
    super(args, 'dropout');
  }

  protected override drop(x: tf.Tensor, seed: number): tf.Tensor {
    return applyDropout(x, this.rate, seed);
  }
}

/** dropout's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const dropoutParams = {
  type: 'object',
  additionalProperties: false,
  required: ['rate'],
  properties: { rate: { type: 'number', minimum: 0, exclusiveMaximum: 1, description: 'Fraction of units dropped in training.' } },
} as const satisfies JsonSchema;
export type DropoutParams = FromSchema<typeof dropoutParams>;

export const dropoutEntry: BlockEntry<DropoutParams> = {
  type: 'dropout',
  description: 'Inverted dropout, active only in training; seeded.',
  params: dropoutParams,
  create: (params, ctx) => new Dropout({ rate: params.rate, seed: ctx.seed, name: ctx.name }),
};

tf.serialization.registerClass(Dropout);
