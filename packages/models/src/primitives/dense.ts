import * as tf from '@tensorflow/tfjs';
import { childSeed } from '@tessera/core/random';
import { defaultsOf, type BlockEntry, type JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { activate, activationSchema, type ActivationName } from './activation.ts';
import {
  initializerSchema,
  makeInitializer,
  matMulLastAxis,
  matMulMiddleAxis,
  resolveAxis,
  singleShape,
  singleTensor,
  snakeCase,
  transposeFlagsAreFast,
  type InitializerName,
} from './common.ts';

/** dense's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const denseParams = {
  type: 'object',
  additionalProperties: false,
  required: ['units'],
  properties: {
    units: { type: 'integer', minimum: 1, description: 'Output width along `axis`.' },
    axis: { type: 'integer', default: -1, description: 'Axis to mix: -1 the channels, 1 the patches (token mixing).' },
    activation: activationSchema('linear'),
    use_bias: { type: 'boolean', default: true, description: 'Add a bias.' },
    kernel_initializer: initializerSchema('glorot_uniform', 'kernel'),
    bias_initializer: initializerSchema('zeros', 'bias'),
  },
} as const satisfies JsonSchema;
export type DenseParams = FromSchema<typeof denseParams>;
const DEFAULTS = defaultsOf(denseParams);

export interface DenseArgs {
  /** Output width along `axis`. */
  units: number;
  /** The axis the layer mixes (default: denseParams). axis 1 on [batch, patches, channels] mixes tokens. */
  axis?: number;
  /** Activation applied after the bias. */
  activation?: ActivationName;
  /** Whether to add a bias. */
  useBias?: boolean;
  /** Kernel initializer. */
  kernelInitializer?: InitializerName;
  /** Bias initializer (a spatial gate that starts open uses ones). */
  biasInitializer?: InitializerName;
  /** Seed of the initializers. */
  seed?: number;
  name?: string;
}

/**
 * A fully connected layer along one axis: y = activation(x ·axis kernel + bias).
 * A non-last axis is moved last with an explicit transpose and the product is a plain 2-D matMul,
 * because wasm runs batched or transposed matMuls several times slower; the native backends
 * multiply along the axis in place instead (matMulMiddleAxis), with no Transpose kernels.
 */
export class Dense extends tf.layers.Layer {
  static className = 'TesseraDense';
  readonly units: number;
  readonly axis: number;
  readonly activation: ActivationName;
  readonly useBias: boolean;
  readonly kernelInitializer: InitializerName;
  readonly biasInitializer: InitializerName;
  readonly seed: number;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(args: DenseArgs) {
    super(args);
    if (!Number.isInteger(args.units) || args.units < 1) {
      throw new Error(`dense: units must be a positive integer, got ${args.units}`);
    }
    this.units = args.units;
    this.axis = args.axis ?? DEFAULTS.axis;
    this.activation = snakeCase(args.activation ?? DEFAULTS.activation) as ActivationName;
    this.useBias = args.useBias ?? DEFAULTS.use_bias;
    this.kernelInitializer = snakeCase(args.kernelInitializer ?? DEFAULTS.kernel_initializer) as InitializerName;
    this.biasInitializer = snakeCase(args.biasInitializer ?? DEFAULTS.bias_initializer) as InitializerName;
    this.seed = args.seed ?? 0;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = singleShape(inputShape, 'dense');
    const axis = resolveAxis(this.axis, shape.length, 'dense');
    const inDim = shape[axis];
    if (inDim == null) throw new Error(`dense: the size of axis ${this.axis} must be known`);
    this.kernel = this.addWeight(
      'kernel',
      [inDim, this.units],
      'float32',
      makeInitializer(this.kernelInitializer, childSeed(this.seed, 0)),
    );
    if (this.useBias) {
      this.bias = this.addWeight(
        'bias',
        [this.units],
        'float32',
        makeInitializer(this.biasInitializer, childSeed(this.seed, 1)),
      );
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const axis = resolveAxis(this.axis, x.rank, 'dense');
      const last = x.rank - 1;
      if (axis !== last && transposeFlagsAreFast()) return this.callAlongMiddleAxis(x, axis);
      // Swapping `axis` with the last axis is its own inverse, so one permutation serves both ways.
      const perm = [...Array(x.rank).keys()];
      perm[axis] = last;
      perm[last] = axis;
      const moved = axis === last ? x : tf.transpose(x, perm);
      let y = matMulLastAxis(moved, this.kernel!.read() as tf.Tensor2D);
      if (this.bias) y = tf.add(y, this.bias.read());
      y = activate(this.activation, y);
      return axis === last ? y : tf.transpose(y, perm);
    });
  }

  /** The same product with `axis` kept in place: x seen as [before, axis, after], no Transpose. */
  private callAlongMiddleAxis(x: tf.Tensor, axis: number): tf.Tensor {
    const before = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const after = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const x3d = x.reshape([before, x.shape[axis]!, after]) as tf.Tensor3D;
    let y: tf.Tensor = matMulMiddleAxis(x3d, this.kernel!.read() as tf.Tensor2D);
    if (this.bias) y = tf.add(y, this.bias.read().reshape([this.units, 1]));
    y = activate(this.activation, y);
    const shape = [...x.shape];
    shape[axis] = this.units;
    return y.reshape(shape);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = [...singleShape(inputShape, 'dense')];
    shape[resolveAxis(this.axis, shape.length, 'dense')] = this.units;
    return shape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      axis: this.axis,
      activation: this.activation,
      useBias: this.useBias,
      kernelInitializer: this.kernelInitializer,
      biasInitializer: this.biasInitializer,
      seed: this.seed,
    };
  }
}

export const denseEntry: BlockEntry<DenseParams> = {
  type: 'dense',
  description: 'Fully connected layer along an axis (axis 1 mixes tokens), explicit initializers, optional activation.',
  params: denseParams,
  create: (params, ctx) =>
    new Dense({
      units: params.units,
      axis: params.axis,
      activation: params.activation,
      useBias: params.use_bias,
      kernelInitializer: params.kernel_initializer,
      biasInitializer: params.bias_initializer,
      seed: ctx.seed,
      name: ctx.name,
    }),
};

tf.serialization.registerClass(Dense);
