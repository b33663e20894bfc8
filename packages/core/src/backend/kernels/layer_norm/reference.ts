/* TesseraLayerNorm and TesseraLayerNormGrad (../contract.ts): the references, in float64. */

/**
 * TesseraLayerNorm into given arrays (x row-major [rows, C], C = gamma.length): the mean, the
 * variance about it (a second pass over the row, in cache), then y. Float64 arithmetic. Also the
 * wasm backend's path where its SIMD kernel cannot run.
 */
export function layerNormInto(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  epsilon: number,
  out: { y: Float32Array; mean: Float32Array; rstd: Float32Array },
): void {
  const columns = gamma.length;
  const rows = x.length / columns;
  for (let r = 0; r < rows; r++) {
    const o = r * columns;
    let sum = 0;
    for (let c = 0; c < columns; c++) sum += x[o + c]!;
    const m = sum / columns;
    let squares = 0;
    for (let c = 0; c < columns; c++) squares += (x[o + c]! - m) ** 2;
    const s = 1 / Math.sqrt(squares / columns + epsilon);
    for (let c = 0; c < columns; c++) out.y[o + c] = (x[o + c]! - m) * s * gamma[c]! + beta[c]!;
    out.mean[r] = m;
    out.rstd[r] = s;
  }
}

/** TesseraLayerNorm on plain arrays (x row-major [rows, C]). */
export function referenceLayerNorm(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  epsilon: number,
): { y: Float32Array; mean: Float32Array; rstd: Float32Array } {
  const rows = x.length / gamma.length;
  const out = { y: new Float32Array(x.length), mean: new Float32Array(rows), rstd: new Float32Array(rows) };
  layerNormInto(x, gamma, beta, epsilon, out);
  return out;
}

/** TesseraLayerNormGrad on plain arrays. */
export function referenceLayerNormGrad(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  gamma: ArrayLike<number>,
): { dx: Float32Array; dgamma: Float32Array; dbeta: Float32Array } {
  const columns = gamma.length;
  const rows = x.length / columns;
  const dx = new Float32Array(x.length);
  const dgamma = new Float64Array(columns);
  const dbeta = new Float64Array(columns);
  for (let r = 0; r < rows; r++) {
    const o = r * columns;
    let meanG = 0;
    let meanGXhat = 0;
    for (let c = 0; c < columns; c++) {
      const xhat = (x[o + c]! - mean[r]!) * rstd[r]!;
      const g = dy[o + c]! * gamma[c]!;
      meanG += g;
      meanGXhat += g * xhat;
      dgamma[c]! += dy[o + c]! * xhat;
      dbeta[c]! += dy[o + c]!;
    }
    meanG /= columns;
    meanGXhat /= columns;
    for (let c = 0; c < columns; c++) {
      const xhat = (x[o + c]! - mean[r]!) * rstd[r]!;
      dx[o + c] = rstd[r]! * (dy[o + c]! * gamma[c]! - meanG - xhat * meanGXhat);
    }
  }
  return { dx, dgamma: Float32Array.from(dgamma), dbeta: Float32Array.from(dbeta) };
}
