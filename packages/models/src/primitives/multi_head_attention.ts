import * as tf from '@tensorflow/tfjs';
import { childSeed } from '@tessera/core/random';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { initializerSchema, makeInitializer, matMul2dTransposed, singleShape, singleTensor, snakeCase, type InitializerName } from './common.ts';
import { applyDropout, dropoutMaskSeed } from './dropout.ts';

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

export interface SelfAttentionOptions {
  numHeads: number;
  keyDim: number;
  valueDim: number;
  /** Dropout on the attention weights; 0 outside training. */
  rate: number;
  /** The dropout mask's seed (applyDropout): the backward pass redraws the same mask from it. */
  seed: number;
}

/**
 * Multi-head self-attention of x [batch, sequence, dim] with kernels [dim, heads * size] for query,
 * key and value, [heads * value_dim, dim] for the output, and their biases (none, or one per
 * kernel), as ONE op with a hand-written gradient. The reason is memory. The attention weights are
 * [batch, heads, sequence, sequence] (21 MB per layer for ViT-small at batch 64, 85 MB at 256) and
 * the projections [batch, sequence, heads * size]. Left to autodiff, every intermediate of the layer
 * (projections, bias adds, transposes, scores, softmax, dropped weights) stays on the tape, and
 * TF.js keeps every gradient it computes until the whole backward pass ends, so a ViT-small step
 * at batch 256 peaked at 13 GiB resident. Here the forward keeps x, q, k, v, the softmax weights and
 * the attended values; the backward recomputes the dropout mask from its seed and frees all its
 * temporaries as soon as the layer's gradients are out.
 */
export function selfAttention(x: tf.Tensor, kernels: tf.Tensor[], biases: tf.Tensor[], o: SelfAttentionOptions): tf.Tensor {
  const [batch, sequence, dim] = x.shape as [number, number, number];
  const h = o.numHeads;
  const sizes = [o.keyDim, o.keyDim, o.valueDim];
  const scale = 1 / Math.sqrt(o.keyDim);
  const drop = (t: tf.Tensor) => (o.rate > 0 ? applyDropout(t, o.rate, o.seed) : t);
  // [batch * sequence, heads * size] <-> [batch, heads, sequence, size]
  const split = (t: tf.Tensor, size: number) => tf.transpose(t.reshape([batch, sequence, h, size]), [0, 2, 1, 3]);
  const merge = (t: tf.Tensor, size: number) => tf.transpose(t, [0, 2, 1, 3]).reshape([batch * sequence, h * size]);
  const useBias = biases.length > 0;
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [input, ...weights] = args.slice(0, -1) as tf.Tensor[];
    const ks = weights.slice(0, 4);
    const bs = weights.slice(4);
    const flat = input!.reshape([batch * sequence, dim]);
    const project = (n: number) => {
      const y = tf.matMul(flat, ks[n]!);
      return split(useBias ? tf.add(y, bs[n]!) : y, sizes[n]!);
    };
    const q = tf.mul(project(0), scale);
    const k = project(1);
    const v = project(2);
    const w = tf.softmax(tf.matMul(q, k, false, true)); // [batch, heads, sequence, sequence]
    const attended = merge(tf.matMul(drop(w), v), o.valueDim);
    const y = tf.matMul(attended, ks[3]!);
    save([flat, q, k, v, w, attended, ...ks]);
    return {
      value: (useBias ? tf.add(y, bs[3]!) : y).reshape([batch, sequence, dim]),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sFlat, sq, sk, sv, sw, sAttended, ...sk4] = saved as tf.Tensor[];
          const dOut = (Array.isArray(dy) ? dy[0]! : dy).reshape([batch * sequence, dim]);
          const dAttended = split(matMul2dTransposed(dOut as tf.Tensor2D, sk4[3]! as tf.Tensor2D, false, true), o.valueDim);
          // The [batch, heads, sequence, sequence] temporaries go as soon as they are used: at most
          // three of them live at once.
          const dValue = tf.tidy(() => tf.matMul(drop(sw!), dAttended, true, false));
          const dWeights = tf.tidy(() => drop(tf.matMul(dAttended, sv!, false, true)));
          // softmax: dS = w * (dW - sum over the keys of dW * w)
          const rowSums = tf.tidy(() => tf.sum(tf.mul(dWeights, sw!), -1, true));
          const centered = tf.sub(dWeights, rowSums);
          dWeights.dispose();
          const dScores = tf.mul(sw!, centered);
          centered.dispose();
          const dProjections = [tf.mul(tf.matMul(dScores, sk!), scale), tf.matMul(dScores, sq!, true, false), dValue].map((d, n) =>
            merge(d, sizes[n]!),
          );
          const dx = dProjections.reduce((sum: tf.Tensor | null, d, n) => {
            const term = matMul2dTransposed(d as tf.Tensor2D, sk4[n]! as tf.Tensor2D, false, true);
            return sum ? tf.add(sum, term) : term;
          }, null)!;
          const dKernels = [sFlat, sFlat, sFlat, sAttended].map((a, n) =>
            matMul2dTransposed(a as tf.Tensor2D, (n < 3 ? dProjections[n] : dOut) as tf.Tensor2D, true, false),
          );
          const dBiases = useBias ? [...dProjections, dOut].map((d) => tf.sum(d, 0)) : [];
          return [dx.reshape([batch, sequence, dim]), ...dKernels, ...dBiases];
        }),
    };
  }) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor;
  return op(x, ...kernels, ...biases);
}

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
    this.dropout = args.dropout ?? DEFAULTS.dropout;
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new Error(`multi_head_attention: dropout must be in [0, 1), got ${this.dropout}`);
    this.useBias = args.useBias ?? DEFAULTS.use_bias;
    this.kernelInitializer = snakeCase(args.kernelInitializer ?? DEFAULTS.kernel_initializer) as InitializerName;
    this.biasInitializer = snakeCase(args.biasInitializer ?? DEFAULTS.bias_initializer) as InitializerName;
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
      const dim = this.width(x.shape);
      const h = this.numHeads;
      const sizes = [this.keyDim, this.keyDim, this.valueDim];
      // Keras' 3-D kernels seen as the 2-D matrices the products use.
      const kernels = this.kernels.map((k, n) => k.read().reshape(n < 3 ? [dim, h * sizes[n]!] : [h * this.valueDim, dim]));
      const biases = this.biases.map((b, n) => (n < 3 ? b.read().reshape([h * sizes[n]!]) : b.read()));
      const rate = kwargs?.['training'] ? this.dropout : 0;
      return selfAttention(x, kernels, biases, { numHeads: h, keyDim: this.keyDim, valueDim: this.valueDim, rate, seed: rate > 0 ? dropoutMaskSeed(this.seed) : 0 });
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

/** multi_head_attention's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const multiHeadAttentionParams = {
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
} as const satisfies JsonSchema;
export type MultiHeadAttentionParams = FromSchema<typeof multiHeadAttentionParams>;
const DEFAULTS = defaultsOf(multiHeadAttentionParams);

export const multiHeadAttentionEntry: BlockEntry<MultiHeadAttentionParams> = {
  type: 'multi_head_attention',
  description: "Keras' MultiHeadAttention as self-attention over [batch, sequence, dim], Keras' weight shapes; output width = input width.",
  params: multiHeadAttentionParams,
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
