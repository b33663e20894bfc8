/** TesseraBiasAdd on plain arrays (x row-major [rows, C], C = bias.length). */
export function referenceBiasAdd(x: ArrayLike<number>, bias: ArrayLike<number>): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! + bias[i % bias.length]!;
  return y;
}

/** TesseraBiasAddGrad on plain arrays: the column sums of dy [rows, C] (float64). */
export function referenceBiasAddGrad(dy: ArrayLike<number>, columns: number): Float32Array {
  const sums = new Float64Array(columns);
  for (let i = 0; i < dy.length; i++) sums[i % columns]! += dy[i]!;
  return Float32Array.from(sums);
}
