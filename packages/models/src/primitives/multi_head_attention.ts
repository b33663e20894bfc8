import * as tf from '@tensorflow/tfjs';
import { childSeed } from '@tessera/core/random';
import type { BlockEntry } from '@tessera/core/registry';
import { initializerSchema, makeInitializer, matMulLastAxis, singleShape, singleTensor, snakeCase, type InitializerName } from './common.ts';
import { applyDropout, stepSeed } from './dropout.ts';

export interface MultiHeadAttentionArgs {
  numHeads: number;
  /** Size of each head's queries and keys. */
  keyDim: number;
  /** Size of each head's values (default keyDim). */
  valueDim?: number;
  /** Dropout on the attention weights, in training (default 0). */
  dropout?: number;
  useBias?: boolean;
  kernelInitializer?: InitializerName;
  biasInitializer?: InitializerName;
  seed?: number;
  name?: string;
}

const PROJECTIONS = ['query', 'key', 'value'] as const;

/**
 * Keras' MultiHeadAttention as self-attention over [batch, sequence, dim]: query, key and value
 * projections with kernels [dim, heads, key_dim] (value: value_dim) and biases [heads, key_dim],
 * softmax(q k^T / sqrt(key_dim)) over the keys, dropout on those weights in training, and the
 * output projection [heads, value_dim, dim] back to the input width. Weight shapes, order and
 * glorot fans are Keras', so Keras weights load one to one. Each projection is ONE 2-D matMul
 * over the kernel seen as [dim, heads * key_dim].
 */
export class MultiHeadAttention extends tf.layers.Layer {
  static className = 'TesseraMultiHeadAttention';
  readonly numHeads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  readonly dropout: number;
  readonly useBias: boolean;
  readonly kernelInitializer: InitializerName;
  readonly biasInitializer: InitializerName;
  readonly seed: number;
  private kernels: tf.LayerVariable[] = [];
  private biases: tf.LayerVariable[] = [];

  constructor(args: MultiHeadAttentionArgs) {
    super(args);
    for (const [key, value] of [['num_heads', args.numHeads], ['key_dim', args.keyDim], ['value_dim', args.valueDim ?? args.keyDim]] as const) {
      if (!Number.isInteger(value) || value < 1) throw new Error(`multi_head_attention: ${key} must be a positive integer, got ${value}`);
    }
    this.numHeads = args.numHeads;
    this.keyDim = args.keyDim;
    this.valueDim = args.valueDim ?? args.keyDim;
    this.dropout = args.dropout ?? 0;
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`multi_head_attention: dropout must be in [0, 1), got ${this.dropout}`);
    this.useBias = args.useBias ?? true;
    this.kernelInitializer = snakeCase(args.kernelInitializer ?? 'glorot_uniform') as InitializerName;
    this.biasInitializer = snakeCase(args.biasInitializer ?? 'zeros') as InitializerName;
    this.seed = args.seed ?? 0;
  }

  private width(shape: tf.Shape): number {
    const dim = shape[2];
    if (shape.length !== 3 || dim == null) throw new Error(`multi_head_attention: expects [batch, sequence, dim] with a known dim, got [${shape}]`);
    return dim;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const dim = this.width(singleShape(inputShape, 'multi_head_attention'));
    const h = this.numHeads;
    const kernel = (name: string, shape: number[], n: number) =>
      this.addWeight(`${name}/kernel`, shape, 'float32', makeInitializer(this.kernelInitializer, childSeed(this.seed, 2 * n)));
    const bias = (name: string, shape: number[], n: number) =>
      this.addWeight(`${name}/bias`, shape, 'float32', makeInitializer(this.biasInitializer, childSeed(this.seed, 2 * n + 1)));
    // Keras' order: query, key, value, attention_output; each kernel then its bias.
    PROJECTIONS.forEach((name, n) => {
      const size = name === 'value' ? this.valueDim : this.keyDim;
      this.kernels.push(kernel(name, [dim, h, size], n));
      if (this.useBias) this.biases.push(bias(name, [h, size], n));
    });
    this.kernels.push(kernel('attention_output', [h, this.valueDim, dim], 3));
    if (this.useBias) this.biases.push(bias('attention_output', [dim], 3));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const [batch, sequence] = x.shape as [number, number, number];
      const dim = this.width(x.shape);
      const h = this.numHeads;
      // [batch, sequence, dim] -> [batch, heads, sequence, size]
      const project = (n: number, size: number) => {
        let y = matMulLastAxis(x, this.kernels[n]!.read().reshape([dim, h * size]) as tf.Tensor2D);
        if (this.useBias) y = tf.add(y, this.biases[n]!.read().reshape([h * size]));
        return tf.transpose(y.reshape([batch, sequence, h, size]), [0, 2, 1, 3]);
      };
      const query = tf.mul(project(0, this.keyDim), 1 / Math.sqrt(this.keyDim));
      const key = project(1, this.keyDim);
      const value = project(2, this.valueDim);
      let weights = tf.softmax(tf.matMul(query, key, false, true)); // [batch, heads, sequence, sequence]
      if (kwargs?.['training'] && this.dropout > 0) weights = applyDropout(weights, this.dropout, stepSeed(this.seed));
      const attended = tf.transpose(tf.matMul(weights, value), [0, 2, 1, 3]).reshape([batch, sequence, h * this.valueDim]);
      let out = matMulLastAxis(attended, this.kernels[3]!.read().reshape([h * this.valueDim, dim]) as tf.Tensor2D);
      if (this.useBias) out = tf.add(out, this.biases[3]!.read());
      return out;
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'multi_head_attention');
    this.width(shape);
    return shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numHeads: this.numHeads,
      keyDim: this.keyDim,
      valueDim: this.valueDim,
      dropout: this.dropout,
      useBias: this.useBias,
      kernelInitializer: this.kernelInitializer,
      biasInitializer: this.biasInitializer,
      seed: this.seed,
    };
  }
}

export interface MultiHeadAttentionParams {
  num_heads: number;
  key_dim: number;
  value_dim?: number;
  dropout?: number;
  use_bias?: boolean;
  kernel_initializer?: InitializerName;
  bias_initializer?: InitializerName;
}

export const multiHeadAttentionEntry: BlockEntry<MultiHeadAttentionParams> = {
  type: 'multi_head_attention',
  description: "Keras' MultiHeadAttention as self-attention over [batch, sequence, dim], Keras' weight shapes; output width = input width.",
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['num_heads', 'key_dim'],
    properties: {
      num_heads: { type: 'integer', minimum: 1, description: 'Number of attention heads.' },
      key_dim: { type: 'integer', minimum: 1, description: 'Size of each head\'s queries and keys.' },
      value_dim: { type: 'integer', minimum: 1, description: 'Size of each head\'s values (default key_dim).' },
      dropout: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0, description: 'Dropout on the attention weights, in training.' },
      use_bias: { type: 'boolean', default: true, description: 'Biases on the four projections.' },
      kernel_initializer: initializerSchema('glorot_uniform', 'projection kernels'),
      bias_initializer: initializerSchema('zeros', 'projection biases'),
    },
  },
  create: (params, ctx) =>
    new MultiHeadAttention({
      numHeads: params.num_heads,
      keyDim: params.key_dim,
      valueDim: params.value_dim,
      dropout: params.dropout,
      useBias: params.use_bias,
      kernelInitializer: params.kernel_initializer,
      biasInitializer: params.bias_initializer,
      seed: ctx.seed,
      name: ctx.name,
    }),
};

tf.serialization.registerClass(MultiHeadAttention);
