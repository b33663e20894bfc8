import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS, hasFusedKernel } from '@tessera/core/backend';

/* Helpers shared by the primitives: initializers, axes and the names that survive serialization. */

/** Initializers a YAML file may name; the Keras names, all explicit (no silent library default). */
export const INITIALIZERS = [
  'zeros',
  'ones',
  'glorot_uniform',
  'glorot_normal',
  'he_uniform',
  'he_normal',
  'lecun_uniform',
  'lecun_normal',
  'truncated_normal',
  'random_uniform',
] as const;
export type InitializerName = (typeof INITIALIZERS)[number];

export function initializerSchema<D extends InitializerName>(defaultName: D, what: string) {
  return { enum: INITIALIZERS, default: defaultName, description: `Initializer of the ${what}.` } as const;
}

/**
 * tfjs-layers saves configs with snake_case strings and loads them back as camelCase
 * ("glorot_uniform" comes back as "glorotUniform"), so every enum string a layer stores is
 * brought back to its snake_case spelling before use.
 */
export function snakeCase(value: string): string {
  return value.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** A seeded initializer: the same name and seed give the same weights on every backend. */
export function makeInitializer(name: string, seed: number): ReturnType<typeof tf.initializers.zeros> {
  const canonical = snakeCase(name) as InitializerName;
  switch (canonical) {
    case 'zeros':
      return tf.initializers.zeros();
    case 'ones':
      return tf.initializers.ones();
    case 'glorot_uniform':
      return tf.initializers.glorotUniform({ seed });
    case 'glorot_normal':
      return tf.initializers.glorotNormal({ seed });
    case 'he_uniform':
      return tf.initializers.heUniform({ seed });
    case 'he_normal':
      return tf.initializers.heNormal({ seed });
    case 'lecun_uniform':
      return tf.initializers.leCunUniform({ seed });
    case 'lecun_normal':
      return tf.initializers.leCunNormal({ seed });
    case 'truncated_normal':
      // Keras' TruncatedNormal defaults: mean 0, stddev 0.05.
      return tf.initializers.truncatedNormal({ mean: 0, stddev: 0.05, seed });
    case 'random_uniform':
      // Keras' RandomUniform defaults (and Embedding's default initializer): uniform in [-0.05, 0.05].
      return tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed });
    default:
      throw new Error(`unknown initializer "${name}"; valid: ${INITIALIZERS.join(', ')}`);
  }
}

/** Resolves a possibly negative axis against a rank; refuses the batch axis unless allowed. */
export function resolveAxis(axis: number, rank: number, what: string, allowBatch = false): number {
  const resolved = axis < 0 ? rank + axis : axis;
  if (!Number.isInteger(resolved) || resolved < (allowBatch ? 0 : 1) || resolved >= rank) {
    throw new Error(`${what}: axis ${axis} is out of range for an input of rank ${rank} (axis 0 is the batch)`);
  }
  return resolved;
}

/** The shape of the (single) input a layer received; refuses lists of inputs. */
export function singleShape(inputShape: tf.Shape | tf.Shape[], what: string): tf.Shape {
  if (Array.isArray(inputShape[0])) {
    if ((inputShape as tf.Shape[]).length !== 1) throw new Error(`${what} takes one input`);
    return (inputShape as tf.Shape[])[0]!;
  }
  return inputShape as tf.Shape;
}

export function singleTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0]! : inputs;
}

/**
 * Whether the backend multiplies with transposeA/transposeB flags as fast as without: the native
 * TensorFlow backends do (the flags go to the BLAS call), so an explicit Transpose kernel there
 * is a wasted pass over the operand; wasm and plain JS do not.
 */
export function transposeFlagsAreFast(): boolean {
  return tf.getBackend().startsWith('tensorflow');
}

/**
 * 2-D a x b with either operand transposed: through the transpose flags where the backend runs
 * them fast (transposeFlagsAreFast), else an explicit transpose and a plain matMul.
 */
export function matMul2dTransposed(a: tf.Tensor2D, b: tf.Tensor2D, transposeA: boolean, transposeB: boolean): tf.Tensor2D {
  if (transposeFlagsAreFast()) return tf.matMul(a, b, transposeA, transposeB);
  return tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b);
}

/**
 * a [m, k] x b [k, n] whose gradients are also plain 2-D matMuls over explicitly transposed
 * operands where the backend needs it. Autodiff of tf.matMul uses the transposeA/transposeB
 * flags, which the wasm backend runs several times slower than a transpose followed by a plain
 * matMul.
 */
export const matMul2d = tf.customGrad((...args: unknown[]) => {
  const [a, b] = args as [tf.Tensor2D, tf.Tensor2D];
  const save = args[2] as tf.GradSaveFunc;
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const upstream = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor2D;
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [matMul2dTransposed(upstream, sb, false, true), matMul2dTransposed(sa, upstream, true, false)];
    },
  };
}) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * a [m, k] x constant [k, n] with a gradient for `a` only (the constant's would be a whole
 * wasted matMul); `constantT` is the constant already transposed, so the backward pass is one
 * plain matMul too.
 */
export function matMulByConstant(a: tf.Tensor2D, constant: tf.Tensor2D, constantT: tf.Tensor2D): tf.Tensor2D {
  const multiply = tf.customGrad((...args: unknown[]) => ({
    value: tf.matMul(args[0] as tf.Tensor2D, constant),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [tf.matMul((Array.isArray(dy) ? dy[0] : dy) as tf.Tensor2D, constantT)],
  })) as unknown as (a: tf.Tensor2D) => tf.Tensor2D;
  return multiply(a);
}

/** Multiplies the last axis of x by a [in, out] matrix through one plain 2-D matMul. */
export function matMulLastAxis(x: tf.Tensor, kernel: tf.Tensor2D): tf.Tensor {
  const inDim = x.shape[x.rank - 1]!;
  const flat = x.reshape([-1, inDim]) as tf.Tensor2D;
  return matMul2d(flat, kernel).reshape([...x.shape.slice(0, -1), kernel.shape[1]]);
}

/**
 * Multiplies the middle axis of x [n, in, m] by a [in, out] matrix: y[i] = kernel^T x[i], shape
 * [n, out, m], as ONE batched matMul that broadcasts the kernel and reads it transposed, with no
 * Transpose of x either way: the gradient of x is kernel x dy[i], that of the kernel the sum over
 * i of x[i] dy[i]^T (a small [n, in, out] product summed). Only for backends whose transpose
 * flags are fast (transposeFlagsAreFast); the others move the axis last and use matMul2d.
 */
export const matMulMiddleAxis = tf.customGrad((...args: unknown[]) => {
  const [x, kernel] = args as [tf.Tensor3D, tf.Tensor2D];
  const save = args[2] as tf.GradSaveFunc;
  save([x, kernel]);
  const kernel3d = kernel.reshape([1, ...kernel.shape]) as tf.Tensor3D;
  return {
    value: tf.matMul(kernel3d, x, true, false),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const upstream = (Array.isArray(dy) ? dy[0] : dy) as tf.Tensor3D;
      const [sx, sk] = saved as [tf.Tensor3D, tf.Tensor2D];
      const dx = tf.matMul(sk.reshape([1, ...sk.shape]) as tf.Tensor3D, upstream);
      const dKernel = tf.sum(tf.matMul(sx, upstream, false, true), 0);
      return [dx, dKernel];
    },
  };
}) as unknown as (x: tf.Tensor3D, kernel: tf.Tensor2D) => tf.Tensor3D;

/**
 * An integer or [height, width] pair from a config (kernel sizes, strides, pool sizes). An array,
 * because that is the type FromSchema derives from intPairSchema's items + minItems/maxItems;
 * toPair checks the length for programs that construct a layer directly.
 */
export type IntPair = number | readonly number[];

export function toPair(value: IntPair, what: string): [number, number] {
  const pair: [number, number] = typeof value === 'number' ? [value, value] : [value[0]!, value[1]!];
  if ((typeof value !== 'number' && value.length !== 2) || !pair.every((v) => Number.isInteger(v) && v >= 1)) throw new Error(`${what} must be a positive integer or a pair of them, got ${JSON.stringify(value)}`);
  return pair;
}

const INT_PAIR_ONE_OF = [
  { type: 'integer', minimum: 1 },
  { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 2, maxItems: 2 },
] as const;

/** The JSON Schema of an IntPair parameter, typed literally so that FromSchema derives its type (IntPair). */
export function intPairSchema(description: string): { readonly oneOf: typeof INT_PAIR_ONE_OF; readonly description: string };
export function intPairSchema(description: string, defaultValue: number): { readonly oneOf: typeof INT_PAIR_ONE_OF; readonly default: [number, number]; readonly description: string };
export function intPairSchema(description: string, defaultValue?: number) {
  return {
    oneOf: INT_PAIR_ONE_OF,
    // The default is written as the [height, width] pair the layer runs with (and its getConfig
    // reports), so the config the validator fills in is exactly what ran.
    ...(defaultValue !== undefined ? { default: [defaultValue, defaultValue] } : {}),
    description,
  };
}

/** The output length of one spatial axis of a convolution or pooling window (TensorFlow's rule). */
export function windowOutput(size: number, window: number, stride: number, padding: 'same' | 'valid'): number {
  return padding === 'same' ? Math.ceil(size / stride) : Math.floor((size - window) / stride) + 1;
}

/**
 * x + bias along x's last axis. Through the fused TesseraBiasAdd kernel where the backend has
 * it (on native TensorFlow's BiasAdd/BiasAddGrad, ~4x faster than a broadcast Add and the Sum
 * of its gradient on ConvMixer's [128, 16, 16, 256]), else a broadcast add.
 */
export function addBias(x: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  if (x.dtype === 'float32' && x.rank >= 2 && hasFusedKernel(FUSED_KERNELS.biasAdd)) {
    return tf.engine().runKernel(FUSED_KERNELS.biasAdd, { x, bias }) as tf.Tensor;
  }
  return tf.add(x, bias);
}
