import * as tf from '@tensorflow/tfjs';
import type { BlockEntry } from '@tessera/core';
import { singleShape, singleTensor, subSeed } from './common.ts';

export interface DropoutArgs {
  /** Fraction of the units zeroed in training, in [0, 1). */
  rate: number;
  /** Seed of the masks; each training call draws a fresh mask from it. */
  seed?: number;
  name?: string;
}

/** Inverted dropout: in training zeroes `rate` of the values and scales the rest by 1/(1-rate). */
export class Dropout extends tf.layers.Layer {
  static className = 'TesseraDropout';
  readonly rate: number;
  readonly seed: number;
  private calls = 0;

  constructor(args: DropoutArgs) {
    super(args);
    if (!(args.rate >= 0 && args.rate < 1)) throw new Error(`dropout: rate must be in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
    this.seed = args.seed ?? 0;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = singleTensor(inputs);
    if (!kwargs?.['training'] || this.rate === 0) return tf.clone(x);
    // A fixed seed would draw the same mask every step; the call count keeps runs reproducible.
    this.calls += 1;
    return tf.tidy(() => tf.dropout(x, this.rate, undefined, subSeed(this.seed, this.calls)));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'dropout');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

export const dropoutEntry: BlockEntry<{ rate: number }> = {
  type: 'dropout',
  description: 'Inverted dropout, active only in training; seeded.',
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['rate'],
    properties: { rate: { type: 'number', minimum: 0, exclusiveMaximum: 1, description: 'Fraction of units dropped in training.' } },
  },
  create: (params, ctx) => new Dropout({ rate: params.rate, seed: ctx.seed, name: ctx.name }),
};

tf.serialization.registerClass(Dropout);
