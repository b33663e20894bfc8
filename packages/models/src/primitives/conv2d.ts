import * as tf from '@tensorflow/tfjs';
import { childSeed } from '@tessera/core/random';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { activate, activationSchema, type ActivationName } from './activation.ts';
import {
  addBias,
  initializerSchema,
  intPairSchema,
  makeInitializer,
  singleShape,
  singleTensor,
  snakeCase,
  toPair,
  windowOutput,
  type InitializerName,
  type IntPair,
} from './common.ts';

export interface Conv2dArgs {
  /** Output channels. */
  filters: number;
  /** Window size, an integer or [height, width]. */
  kernelSize: IntPair;
  /** Default 1. */
  strides?: IntPair;
  /** Default valid, as Keras. */
  padding?: 'same' | 'valid';
  /** Dilation rate (default 1). */
  dilation?: IntPair;
  /** Input and output channels are cut into this many groups convolved apart (default 1); groups = input channels is a depthwise convolution. */
  groups?: number;
  useBias?: boolean;
  activation?: ActivationName;
  kernelInitializer?: InitializerName;
  biasInitializer?: InitializerName;
  seed?: number;
  name?: string;
}

/**
 * Keras' Conv2D over channels-last images [batch, h, w, c], with `groups`. The kernel is
 * Keras' [kh, kw, c / groups, filters] (so Keras weights load one to one and glorot's fans are
 * Keras'). groups = c runs as ONE depthwise convolution, other groups > 1 as one convolution per
 * group. A dilation is applied to the kernel (zeros inserted between its taps) rather than passed
 * to the convolution, because TF.js has no gradient for dilated convolutions; the values are the
 * same.
 */
export class Conv2d extends tf.layers.Layer {
  static className = 'TesseraConv2d';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;
  readonly useBias: boolean;
  readonly activation: ActivationName;
  readonly kernelInitializer: InitializerName;
  readonly biasInitializer: InitializerName;
  readonly seed: number;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(args: Conv2dArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1) throw new Error(`conv2d: filters must be a positive integer, got ${args.filters}`);
    this.filters = args.filters;
    this.kernelSize = toPair(args.kernelSize, 'conv2d: kernel_size');
    this.strides = toPair(args.strides ?? DEFAULTS.strides, 'conv2d: strides');
    this.padding = args.padding ?? DEFAULTS.padding;
    this.dilation = toPair(args.dilation ?? DEFAULTS.dilation, 'conv2d: dilation');
    if (this.dilation.some((d) => d > 1) && this.strides.some((s) => s > 1)) {
      throw new Error('conv2d: a dilation above 1 needs strides 1 (as in Keras)');
    }
    this.groups = args.groups ?? DEFAULTS.groups;
    if (!Number.isInteger(this.groups) || this.groups < 1) throw new Error(`conv2d: groups must be a positive integer, got ${this.groups}`);
    if (this.filters % this.groups !== 0) throw new Error(`conv2d: filters (${this.filters}) must be divisible by groups (${this.groups})`);
    this.useBias = args.useBias ?? DEFAULTS.use_bias;
    this.activation = snakeCase(args.activation ?? DEFAULTS.activation) as ActivationName;
    this.kernelInitializer = snakeCase(args.kernelInitializer ?? DEFAULTS.kernel_initializer) as InitializerName;
    this.biasInitializer = snakeCase(args.biasInitializer ?? DEFAULTS.bias_initializer) as InitializerName;
    this.seed = args.seed ?? 0;
  }

  private channels(shape: tf.Shape): number {
    const c = shape[3];
    if (shape.length !== 4 || c == null) throw new Error(`conv2d: expects images [batch, height, width, channels] with known channels, got [${shape}]`);
    if (c % this.groups !== 0) throw new Error(`conv2d: input channels (${c}) must be divisible by groups (${this.groups})`);
    return c;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const c = this.channels(singleShape(inputShape, 'conv2d'));
    const [kh, kw] = this.kernelSize;
    this.kernel = this.addWeight('kernel', [kh, kw, c / this.groups, this.filters], 'float32', makeInitializer(this.kernelInitializer, childSeed(this.seed, 0)));
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', makeInitializer(this.biasInitializer, childSeed(this.seed, 1)));
    this.built = true;
  }

  /** The kernel with (dilation - 1) zeros between neighbouring taps. */
  private dilatedKernel(): tf.Tensor4D {
    const kernel = this.kernel!.read() as tf.Tensor4D;
    const [dh, dw] = this.dilation;
    if (dh === 1 && dw === 1) return kernel;
    const [kh, kw, i, o] = kernel.shape;
    const spread = tf.pad(kernel.reshape([kh, 1, kw, 1, i, o]), [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]]);
    return spread.reshape([kh * dh, kw * dw, i, o]).slice([0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, i, o]) as tf.Tensor4D;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs) as tf.Tensor4D;
      const c = this.channels(x.shape);
      const kernel = this.dilatedKernel();
      const strides = this.strides;
      let y: tf.Tensor4D;
      if (this.groups === 1) {
        y = tf.conv2d(x, kernel, strides, this.padding);
      } else if (this.groups === c) {
        // Keras' [kh, kw, 1, c * m] is TF's depthwise [kh, kw, c, m]: output c*m + k reads input c.
        const [kh, kw] = kernel.shape;
        y = tf.depthwiseConv2d(x, kernel.reshape([kh, kw, c, this.filters / c]) as tf.Tensor4D, strides, this.padding);
      } else {
        const xs = tf.split(x, this.groups, 3) as tf.Tensor4D[];
        const ks = tf.split(kernel, this.groups, 3) as tf.Tensor4D[];
        y = tf.concat(xs.map((part, g) => tf.conv2d(part, ks[g]!, strides, this.padding)), 3);
      }
      const biased = this.bias ? addBias(y, this.bias.read()) : y;
      return activate(this.activation, biased);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'conv2d');
    this.channels(shape);
    const [h, w] = [shape[1]!, shape[2]!];
    const window = this.kernelSize.map((k, i) => (k - 1) * this.dilation[i]! + 1);
    return [shape[0]!, windowOutput(h, window[0]!, this.strides[0], this.padding), windowOutput(w, window[1]!, this.strides[1], this.padding), this.filters];
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      kernelSize: this.kernelSize,
      strides: this.strides,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
      useBias: this.useBias,
      activation: this.activation,
      kernelInitializer: this.kernelInitializer,
      biasInitializer: this.biasInitializer,
      seed: this.seed,
    };
  }
}

/** conv2d's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const conv2dParams = {
  type: 'object',
  additionalProperties: false,
  required: ['filters', 'kernel_size'],
  properties: {
    filters: { type: 'integer', minimum: 1, description: 'Output channels.' },
    kernel_size: intPairSchema('Window size: an integer or [height, width].'),
    strides: intPairSchema('Step of the window: an integer or [height, width].', 1),
    padding: { enum: ['same', 'valid'], default: 'valid', description: 'same keeps ceil(size / stride); valid only full windows (Keras\' default).' },
    dilation: intPairSchema('Dilation rate (Keras dilation_rate): an integer or [height, width].', 1),
    groups: { type: 'integer', minimum: 1, default: 1, description: 'Channel groups convolved apart; groups = input channels is a depthwise convolution.' },
    use_bias: { type: 'boolean', default: true, description: 'Add a bias.' },
    activation: activationSchema('linear'),
    kernel_initializer: initializerSchema('glorot_uniform', 'kernel'),
    bias_initializer: initializerSchema('zeros', 'bias'),
  },
} as const satisfies JsonSchema;
export type Conv2dParams = FromSchema<typeof conv2dParams>;
const DEFAULTS = defaultsOf(conv2dParams);

export const conv2dEntry: BlockEntry<Conv2dParams> = {
  type: 'conv2d',
  description: "2-D convolution over [batch, h, w, c] with Keras' semantics: strides, same/valid padding, dilation, groups (groups = channels is depthwise).",
  params: conv2dParams,
  create: (params, ctx) =>
    new Conv2d({
      filters: params.filters,
      kernelSize: params.kernel_size,
      strides: params.strides,
      padding: params.padding,
      dilation: params.dilation,
      groups: params.groups,
      useBias: params.use_bias,
      activation: params.activation,
      kernelInitializer: params.kernel_initializer,
      biasInitializer: params.bias_initializer,
      seed: ctx.seed,
      name: ctx.name,
    }),
};

tf.serialization.registerClass(Conv2d);
