import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { nativeLoader } from '@tessera/core';
import { Fourier2d, realFft2WithGradient } from './fourier_2d.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Re(FFT2(x)) of one [n, d] example the naive O(n^2 d^2) way, in float64. */
function naiveRealDft2(x: number[][]): number[][] {
  const n = x.length;
  const d = x[0]!.length;
  return x.map((_, p) =>
    x[0]!.map((_, q) => {
      let re = 0;
      for (let m = 0; m < n; m++) for (let k = 0; k < d; k++) re += x[m]![k]! * Math.cos(2 * Math.PI * ((p * m) / n + (q * k) / d));
      return re;
    }),
  );
}

describe('fourier_2d', () => {
  it('equals the real part of a naive 2-D DFT over [tokens, channels], per example', () => {
    // Even and odd channel counts (the layer computes floor(d/2) + 1 channel frequencies and
    // mirrors the rest), and a single channel.
    for (const [seed, shape] of [[11, [3, 5, 6]], [14, [2, 4, 7]], [15, [2, 3, 1]], [16, [2, 6, 2]]] as const) {
      const x = tf.randomNormal([...shape], 0, 1, 'float32', seed);
      const y = new Fourier2d().apply(x) as tf.Tensor;
      const examples = x.arraySync() as number[][][];
      const got = y.arraySync() as number[][][];
      examples.forEach((example, b) => {
        const want = naiveRealDft2(example);
        want.forEach((row, p) => row.forEach((value, q) => expect(got[b]![p]![q]).toBeCloseTo(value, 4)));
      });
    }
  });

  it('gives the DC term (sum of all values) at [0, 0] and has no weights', () => {
    const layer = new Fourier2d();
    const y = layer.apply(tf.ones([1, 4, 8])) as tf.Tensor;
    const values = Array.from(y.dataSync());
    expect(values[0]).toBeCloseTo(32, 4);
    for (const v of values.slice(1)) expect(v).toBeCloseTo(0, 4);
    expect(layer.countParams()).toBe(0);
  });

  it('has the right gradient: the map is linear and self-adjoint, so d sum(F(x) * p) / dx = F(p)', () => {
    for (const shape of [[2, 4, 6], [2, 3, 5]]) {
      const layer = new Fourier2d();
      const x = tf.randomNormal(shape, 0, 1, 'float32', 12);
      const probe = tf.randomNormal(shape, 0, 1, 'float32', 13);
      const grad = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, probe)))(x);
      const want = new Fourier2d().apply(probe) as tf.Tensor;
      expect(tf.max(tf.abs(tf.sub(grad, want))).dataSync()[0]).toBeLessThan(1e-4);
    }
  });
});

/** Values and gradient (against a random probe) of one path of the layer, on the current backend. */
function valuesAndGradient(path: (x: tf.Tensor) => tf.Tensor, shape: number[]): { y: number[][][]; dx: number[] } {
  return tf.tidy(() => {
    const x = tf.randomNormal(shape, 0, 1, 'float32', 21);
    const probe = tf.randomNormal(shape, 0, 1, 'float32', 22);
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(path(input), probe)))(x);
    return { y: path(x).arraySync() as number[][][], dx: Array.from(dx.dataSync()) };
  });
}

function expectClose(got: number[], want: number[]): void {
  expect(got).toHaveLength(want.length);
  got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 3));
}

describe('fourier_2d FFT path (native backends)', () => {
  // Odd and even token counts and widths; [3, 6, 64]-like shapes are FNet's in miniature.
  const shapes = [[2, 4, 6], [2, 5, 7], [1, 3, 8], [2, 6, 5]];

  function compareAgainstGoldens(): void {
    for (const shape of shapes) {
      const matMulLayer = new Fourier2d();
      matMulLayer.build(shape);
      const viaFft = valuesAndGradient(realFft2WithGradient, shape);
      const viaMatMuls = valuesAndGradient((x) => matMulLayer.viaMatMuls(x), shape);
      const x = tf.randomNormal(shape, 0, 1, 'float32', 21).arraySync() as number[][][];
      const probe = tf.randomNormal(shape, 0, 1, 'float32', 22).arraySync() as number[][][];
      // Golden values: the naive DFT of x; golden gradient: the naive DFT of the probe (self-adjoint).
      expectClose(viaFft.y.flat(2), x.flatMap(naiveRealDft2).flat());
      expectClose(viaFft.dx, probe.flatMap(naiveRealDft2).flat());
      expectClose(viaFft.y.flat(2), viaMatMuls.y.flat(2));
      expectClose(viaFft.dx, viaMatMuls.dx);
    }
  }

  it('equals the naive DFT and the matMul path, values and gradients, on the cpu backend', () => {
    compareAgainstGoldens();
  });

  it('does the same on the native backend, which the layer routes to it, leaking no tensors', async (context) => {
    const loaded = await nativeLoader('tensorflow').load({});
    if (!loaded.ok) context.skip(`the native backend is not set up here (pnpm setup:tensorflow): ${loaded.why}`);
    try {
      expect(tf.getBackend()).toBe('tensorflow');
      compareAgainstGoldens();
      const layer = new Fourier2d();
      const x = tf.randomNormal([2, 4, 6], 0, 1, 'float32', 3);
      const step = () => tf.tidy(() => tf.grad((input: tf.Tensor) => tf.sum(layer.apply(input) as tf.Tensor))(x)).dispose();
      step();
      const before = tf.memory().numTensors;
      step();
      expect(tf.memory().numTensors).toBe(before);
      const fromLayer = tf.tidy(() => Array.from((layer.apply(x) as tf.Tensor).dataSync()));
      const fromFft = tf.tidy(() => Array.from(realFft2WithGradient(x).dataSync()));
      expect(fromLayer).toEqual(fromFft);
    } finally {
      await tf.setBackend('cpu');
    }
  });
});
