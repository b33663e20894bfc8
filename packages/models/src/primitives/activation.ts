import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, hasFusedKernel } from '@tessera/core/backend';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { singleShape, singleTensor, snakeCase } from './common.ts';

/** Activation functions, by their Keras names. */
export const ACTIVATIONS = ['linear', 'relu', 'gelu', 'gelu_tanh', 'sigmoid', 'tanh', 'swish', 'softmax'] as const;
export type ActivationName = (typeof ACTIVATIONS)[number];

/** The schema of an activation name; `defaultName` undefined when the parameter is required. */
export function activationSchema(): { readonly enum: typeof ACTIVATIONS; readonly description: string };
export function activationSchema<D extends ActivationName>(defaultName: D): { readonly enum: typeof ACTIVATIONS; readonly default: D; readonly description: string };
export function activationSchema(defaultName?: ActivationName) {
  return {
    enum: ACTIVATIONS,
    ...(defaultName ? { default: defaultName } : {}),
    description: 'Activation: gelu is the exact erf form (Keras\' default), gelu_tanh the tanh approximation.',
  };
}

const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

/**
 * x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)): Keras' gelu(approximate=False), the reference's
 * activation, with its derivative written out, Phi(x) + x * phi(x), from the saved u = x / sqrt 2
 * and Phi(x): x * phi(x) = x exp(-x^2 / 2) / sqrt(2 pi) = u exp(-u^2) / sqrt(pi).
 * Autodiff through the formula runs ~10 kernels back and keeps more of the forward pass alive.
 * The fallback of `geluExact` where the backend has no fused kernel.
 */
const geluExactComposite = tf.customGrad((...args: unknown[]) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const u = tf.mul(x, Math.SQRT1_2);
  const cdf = tf.add(tf.mul(tf.erf(u), 0.5), 0.5);
  save([u, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [su, sCdf] = saved as [tf.Tensor, tf.Tensor];
      const xPdf = tf.mul(tf.mul(su, tf.exp(tf.neg(tf.square(su)))), INV_SQRT_PI);
      return [tf.mul(Array.isArray(dy) ? dy[0]! : dy, tf.add(sCdf, xPdf))];
    },
  };
}) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * The same through the fused kernel (backend/kernels/), which returns the value and the
 * derivative in one pass: the backward pass is one Multiply, and one tensor is saved, not two.
 */
const geluExactFused = tf.customGrad((...args: unknown[]) => {
  const x = args[0] as tf.Tensor;
  const save = args[1] as tf.GradSaveFunc;
  const [y, dydx] = tf.engine().runKernel(FUSED_KERNELS.geluExact, { x }) as tf.Tensor[];
  save([dydx!]);
  return {
    value: y!,
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [tf.mul(Array.isArray(dy) ? dy[0]! : dy, saved[0]!)],
  };
}) as unknown as (x: tf.Tensor) => tf.Tensor;

/** Exact GELU with its hand-written gradient: the fused kernel where the backend has one. */
export function geluExact(x: tf.Tensor): tf.Tensor {
  return x.dtype === 'float32' && hasFusedKernel(FUSED_KERNELS.geluExact) ? geluExactFused(x) : geluExactComposite(x);
}

/** Applies an activation by name (must be called inside a tidy by the caller's layer). */
export function activate(name: string, x: tf.Tensor): tf.Tensor {
  switch (snakeCase(name) as ActivationName) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'gelu':
      return geluExact(x);
    case 'gelu_tanh': {
      const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'swish':
      return tf.mul(x, tf.sigmoid(x));
    case 'softmax':
      return tf.softmax(x);
    default:
      throw new Error(`unknown activation "${name}"; valid: ${ACTIVATIONS.join(', ')}`);
  }
}

export interface ActivationArgs {
  /** The activation function's name (see ACTIVATIONS). */
  activation: ActivationName;
  name?: string;
}

/** An element-wise activation as a layer of its own. */
export class Activation extends tf.layers.Layer {
  static className = 'TesseraActivation';
  readonly activation: ActivationName;

  constructor(args: ActivationArgs) {
    super(args);
    this.activation = snakeCase(args.activation) as ActivationName;
    if (!ACTIVATIONS.includes(this.activation)) {
      throw new Error(`activation: unknown activation "${args.activation}"; valid: ${ACTIVATIONS.join(', ')}`);
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => activate(this.activation, singleTensor(inputs)));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return singleShape(inputShape, 'activation');
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), activation: this.activation };
  }
}

export const activationParams = {
  type: 'object',
  additionalProperties: false,
  required: ['activation'],
  properties: { activation: activationSchema() },
} as const satisfies JsonSchema;
export type ActivationParams = FromSchema<typeof activationParams>;

export const activationEntry: BlockEntry<ActivationParams> = {
  type: 'activation',
  description: 'Element-wise activation (gelu exact erf form, gelu_tanh, relu, sigmoid, tanh, swish, softmax).',
  params: activationParams,
  create: (params, ctx) => new Activation({ activation: params.activation, name: ctx.name }),
};

tf.serialization.registerClass(Activation);
