import * as tf from '@tensorflow/tfjs';
import type { BlockEntry } from '@tessera/core';
import { matMulByConstant, singleShape, singleTensor } from './common.ts';

export interface Fourier2dArgs {
  name?: string;
}

/** [cos | sin] of the n x n DFT angles 2*pi*j*k/n, side by side: an [n, 2n] float32 array. */
function cosSinColumns(n: number): Float32Array {
  const out = new Float32Array(n * 2 * n);
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) {
      // j*k mod n keeps the angle small, so float64 cos/sin stay exact for large n.
      const angle = (2 * Math.PI * ((j * k) % n)) / n;
      out[j * 2 * n + k] = Math.cos(angle);
      out[j * 2 * n + n + k] = Math.sin(angle);
    }
  }
  return out;
}

/** [cos ; -sin] of the n x n DFT angles, stacked: a [2n, n] float32 array. */
function cosMinusSinRows(n: number): Float32Array {
  const out = new Float32Array(2 * n * n);
  for (let j = 0; j < n; j++) {
    for (let k = 0; k < n; k++) {
      const angle = (2 * Math.PI * ((j * k) % n)) / n;
      out[j * n + k] = Math.cos(angle);
      out[(n + j) * n + k] = -Math.sin(angle);
    }
  }
  return out;
}

/**
 * The real part of the 2-D DFT over the last two axes [n, d] (Fourier token mixing, no weights).
 * TF.js has no gradient for FFT, so it is computed as Re(F_n X F_d) = C_n X C_d - S_n X S_d
 * with constant cosine/sine matrices: one matMul by [C_d | S_d], a transpose, one matMul by
 * [C_n ; -S_n], a transpose. Everything is a plain 2-D matMul, so it has gradients and is fast.
 */
export class Fourier2d extends tf.layers.Layer {
  static className = 'TesseraFourier2d';
  // Constants, not weights: rebuilt from the shape, never trained nor saved. Each is kept with
  // its transpose, which the backward pass multiplies by.
  private channelMatrix?: [tf.Tensor2D, tf.Tensor2D]; // [d, 2d] and [2d, d]
  private tokenMatrix?: [tf.Tensor2D, tf.Tensor2D]; // [2n, n] and [n, 2n]

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
    this.channelMatrix = withTranspose(tf.tensor2d(cosSinColumns(d), [d, 2 * d]));
    this.tokenMatrix = withTranspose(tf.tensor2d(cosMinusSinRows(n), [2 * n, n]));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleTensor(inputs);
      const [n, d] = this.lastTwo(x.shape);
      // [b*n, d] x [d, 2d] -> per example [n, 2, d] holding X C_d and X S_d.
      const channelMixed = matMulByConstant(x.reshape([-1, d]) as tf.Tensor2D, ...this.channelMatrix!).reshape([-1, n, 2, d]);
      // -> [b, d, 2, n] so each row is [(X C_d)^T | (X S_d)^T]; times [C_n ; -S_n] (symmetric) gives out^T.
      const rows = tf.transpose(channelMixed, [0, 3, 2, 1]).reshape([-1, 2 * n]) as tf.Tensor2D;
      const outT = matMulByConstant(rows, ...this.tokenMatrix!).reshape([-1, d, n]);
      return tf.transpose(outT, [0, 2, 1]).reshape(x.shape);
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

export const fourier2dEntry: BlockEntry<Record<string, never>> = {
  type: 'fourier_2d',
  description: 'Real part of the 2-D DFT over [tokens, channels] via cos/sin matrix products (Fourier token mixing, no weights).',
  params: { type: 'object', additionalProperties: false, properties: {} },
  create: (_params, ctx) => new Fourier2d({ name: ctx.name }),
};

tf.serialization.registerClass(Fourier2d);
