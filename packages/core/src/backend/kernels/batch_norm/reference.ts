/**
 * TesseraBatchNorm on plain arrays (x row-major [rows, C], C = gamma.length): per column the
 * mean, the biased variance about it, then y. Float64 arithmetic.
 */
export function referenceBatchNorm(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  epsilon: number,
): { y: Float32Array; mean: Float32Array; variance: Float32Array } {
  const columns = gamma.length;
  const rows = x.length / columns;
  const mean = new Float64Array(columns);
  const variance = new Float64Array(columns);
  for (let i = 0; i < x.length; i++) mean[i % columns]! += x[i]!;
  for (let c = 0; c < columns; c++) mean[c]! /= rows;
  for (let i = 0; i < x.length; i++) variance[i % columns]! += (x[i]! - mean[i % columns]!) ** 2;
  for (let c = 0; c < columns; c++) variance[c]! /= rows;
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % columns;
    y[i] = ((x[i]! - mean[c]!) / Math.sqrt(variance[c]! + epsilon)) * gamma[c]! + beta[c]!;
  }
  return { y, mean: Float32Array.from(mean), variance: Float32Array.from(variance) };
}

/** TesseraBatchNormGrad on plain arrays (x and dy row-major [rows, C]). */
export function referenceBatchNormGrad(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  gamma: ArrayLike<number>,
  epsilon: number,
): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
  const columns = gamma.length;
  const rows = x.length / columns;
  const rstd = Array.from(variance, (v) => 1 / Math.sqrt(v + epsilon));
  const xhat = (i: number) => (x[i]! - mean[i % columns]!) * rstd[i % columns]!;
  const dgamma = new Float64Array(columns);
  const dbeta = new Float64Array(columns);
  for (let i = 0; i < x.length; i++) {
    dgamma[i % columns]! += dy[i]! * xhat(i);
    dbeta[i % columns]! += dy[i]!;
  }
  const dx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const c = i % columns;
    dx[i] = rstd[c]! * gamma[c]! * (dy[i]! - dbeta[c]! / rows - xhat(i) * (dgamma[c]! / rows));
  }
  return { dx, dgamma: Float32Array.from(dgamma), dbeta: Float32Array.from(dbeta) };
}
