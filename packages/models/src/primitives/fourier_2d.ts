import * as tf from '@tensorflow/tfjs';
import type { BlockEntry, JsonSchema } from '@tessera/core/registry';
import type { FromSchema } from 'json-schema-to-ts';
import { matMulByConstant, singleShape, singleTensor } from './common.ts';

export interface Fourier2dArgs {
  name?: string;
}

/** The DFT angle 2*pi*j*k/n; j*k mod n keeps it small, so float64 cos/sin stay exact for large n. */
const angle = (j: number, k: number, n: number) => (2 * Math.PI * ((j * k) % n)) / n;

/**
 * [cos | sin] of the d-point DFT angles, only the first h output columns of each: [d, 2h].
 * Columns k and d - k of the cosine matrix are equal and of the sine matrix opposite, so the
 * first floor(d/2) + 1 columns carry everything.
 */
function cosSinColumns(d: number, h: number): Float32Array {
  const out = new Float32Array(d * 2 * h);
  for (let j = 0; j < d; j++) {
    for (let k = 0; k < h; k++) {
      out[j * 2 * h + k] = Math.cos(angle(j, k, d));
      out[j * 2 * h + h + k] = Math.sin(angle(j, k, d));
    }
  }
  return out;
}

/** [[C, C], [-S, S]] of the n-point DFT: [2n, 2n]. */
function tokenMatrix(n: number): Float32Array {
  const out = new Float32Array(4 * n * n);
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) {
      const c = Math.cos(angle(j, k, n));
      const s = Math.sin(angle(j, k, n));
      out[j * 2 * n + k] = c;
      out[j * 2 * n + n + k] = c;
      out[(n + j) * 2 * n + k] = -s;
      out[(n + j) * 2 * n + n + k] = s;
    }
  }
  return out;
}

/**
 * Whether the backend runs FFT as a native kernel: the native TensorFlow backends do; wasm has
 * no FFT kernel and the cpu backend's is plain JavaScript, slower than the matMuls.
 */
function fftKernelsAreFast(): boolean {
  return tf.getBackend().startsWith('tensorflow');
}

/** The part of tfjs-node's backend that runs any TensorFlow op by name (not in TF.js's types). */
interface NativeOpRunner {
  binding: { TF_ATTR_TYPE: number; TF_COMPLEX64: number };
  executeSingleOutput(name: string, attrs: { name: string; type: number; value: number }[], inputs: tf.Tensor[]): tf.Tensor;
}

function nativeOpRunner(): NativeOpRunner | undefined {
  const backend = tf.backend() as unknown as Partial<NativeOpRunner>;
  return typeof backend.executeSingleOutput === 'function' && backend.binding ? (backend as NativeOpRunner) : undefined;
}

/**
 * Re(FFT2(x)) over the last two axes with FFT kernels. On native, TensorFlow's FFT2D does both
 * axes in one kernel: the one-axis FFTs TF.js offers need complex transposes in between, and
 * measured no faster than the matMul path (docs/performance.md). Elsewhere (the cpu backend,
 * in tests) it is FFT along channels, then along tokens.
 */
function realFft2(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const complex = tf.complex(x, tf.zerosLike(x));
    const native = nativeOpRunner();
    if (native) {
      const { TF_ATTR_TYPE, TF_COMPLEX64 } = native.binding;
      return tf.real(native.executeSingleOutput('FFT2D', [{ name: 'Tcomplex', type: TF_ATTR_TYPE, value: TF_COMPLEX64 }], [complex]));
    }
    const swapLastTwo = [...Array(x.rank - 2).keys(), x.rank - 1, x.rank - 2];
    const tokenMixed = tf.spectral.fft(tf.transpose(tf.spectral.fft(complex), swapLastTwo));
    return tf.transpose(tf.real(tokenMixed), swapLastTwo);
  });
}

/**
 * realFft2 with a gradient (TF.js has none for FFT). X -> Re(F_n X F_d) is linear and
 * self-adjoint on real X (C and S are symmetric, and Re(F_n X F_d) = C_n X C_d - S_n X S_d), so
 * its gradient is the same map applied to dY: both passes use the FFT kernels.
 */
export const realFft2WithGradient = tf.customGrad((...args: unknown[]) => ({
  value: realFft2(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor | tf.Tensor[]) => [realFft2(Array.isArray(dy) ? dy[0]! : dy)],
})) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * The real part of the 2-D DFT over the last two axes [n, d] (Fourier token mixing, no weights).
 * Where the backend has fast FFT kernels it is realFft2WithGradient. Elsewhere it is computed
 * as Re(F_n X F_d) = C_n X C_d - S_n X S_d with constant cosine/sine matrices, all plain 2-D matMuls (gradients, fast).
 * X is real, so only the first h = floor(d/2) + 1 channel frequencies are computed:
 * A = X C_h and B = X S_h (one matMul by [C_h | S_h]); per channel frequency k the token
 * matMul by [[C_n, C_n], [-S_n, S_n]] gives both C_n A - S_n B, the output column k, and
 * C_n A + S_n B, the output column d - k (cos even, sin odd in k). That is ~40% fewer
 * multiply-adds than the full [C_d | S_d] product for n = 64, d = 256.
 */
export class Fourier2d extends tf.layers.Layer {
  static className = 'TesseraFourier2d';
  // Constants, not weights: rebuilt from the shape, never trained nor saved. Each is kept with
  // its transpose, which the backward pass multiplies by.
  private channelMatrix?: [tf.Tensor2D, tf.Tensor2D]; // [d, 2h] and [2h, d]
  private tokenMatrix?: [tf.Tensor2D, tf.Tensor2D]; // [2n, 2n] and its transpose

  constructor(args: Fourier2dArgs = {}) {
    super(args);
  }

  private lastTwo(shape: tf.Shape): [number, number] {
    const n = shape[shape.length - 2];
    const d = shape[shape.length - 1];
    if (shape.length < 3 || n == null || d == null) {
      throw new Error(`fourier_2d: expects [batch, ..., tokens, channels] with known sizes, got [${shape}]`);
    }
    return [n, d];
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const [n, d] = this.lastTwo(singleShape(inputShape, 'fourier_2d'));
    const withTranspose = (m: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] => [tf.keep(m), tf.keep(tf.transpose(m))];
    const h = Math.floor(d / 2) + 1;
    this.channelMatrix = withTranspose(tf.tensor2d(cosSinColumns(d, h), [d, 2 * h]));
    this.tokenMatrix = withTranspose(tf.tensor2d(tokenMatrix(n), [2 * n, 2 * n]));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (fftKernelsAreFast()) return realFft2WithGradient(singleTensor(inputs));
    return this.viaMatMuls(singleTensor(inputs));
  }

  /** The cos/sin matMul path: exact gradients from plain 2-D matMuls, fast without FFT kernels. */
  viaMatMuls(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [n, d] = this.lastTwo(x.shape);
      const h = Math.floor(d / 2) + 1;
      // [b*n, d] x [d, 2h] -> per example [n, 2, h] holding A = X C_h and B = X S_h.
      const channelMixed = matMulByConstant(x.reshape([-1, d]) as tf.Tensor2D, ...this.channelMatrix!).reshape([-1, n, 2, h]);
      // -> rows [A[:, k]^T | B[:, k]^T] of length 2n; times [[C, C], [-S, S]] -> [(C A - S B)[:, k]^T | (C A + S B)[:, k]^T].
      const rows = tf.transpose(channelMixed, [0, 3, 2, 1]).reshape([-1, 2 * n]) as tf.Tensor2D;
      const mixed = tf.transpose(matMulByConstant(rows, ...this.tokenMatrix!).reshape([-1, h, 2, n]), [0, 3, 2, 1]);
      // Output columns 0..h-1 are C A - S B; columns h..d-1 are C A + S B at d - h .. 1.
      const batch = mixed.shape[0]!;
      const low = tf.slice(mixed, [0, 0, 0, 0], [batch, n, 1, h]).reshape([batch, n, h]);
      if (d === h) return low.reshape(x.shape);
      const high = tf.reverse(tf.slice(mixed, [0, 0, 1, 1], [batch, n, 1, d - h]).reshape([batch, n, d - h]), 2);
      return tf.concat([low, high], 2).reshape(x.shape);
    });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = singleShape(inputShape, 'fourier_2d');
    this.lastTwo(shape);
    return shape;
  }

  override dispose(): ReturnType<tf.layers.Layer['dispose']> {
    tf.dispose([...(this.channelMatrix ?? []), ...(this.tokenMatrix ?? [])]);
    return super.dispose();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig() };
  }
}

/** fourier_2d's params, declared once (core's registry/params.ts): the type and the layer's defaults derive from it. */
export const fourier2dParams = { type: 'object', additionalProperties: false, properties: {} } as const satisfies JsonSchema;
export type Fourier2dParams = FromSchema<typeof fourier2dParams>;

export const fourier2dEntry: BlockEntry<Fourier2dParams> = {
  type: 'fourier_2d',
  description: 'Real part of the 2-D DFT over [tokens, channels]: FFT kernels on the native backends, cos/sin matrix products elsewhere (Fourier token mixing, no weights).',
  params: fourier2dParams,
  create: (_params, ctx) => new Fourier2d({ name: ctx.name }),
};

tf.serialization.registerClass(Fourier2d);
