/* TesseraGeluExact (../contract.ts): the reference, in float64. */

const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** erf to ~1e-15: a Maclaurin series below 2.5, a continued fraction for erfc above (float64 throughout). */
export function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    // Maclaurin series: erf(a) = 2/sqrt(pi) sum (-1)^n a^(2n+1) / (n! (2n+1)); converges fast below 2.5.
    let term = a;
    let sum = a;
    const a2 = a * a;
    for (let n = 1; n < 80; n++) {
      term *= -a2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc by Lentz's continued fraction: erfc(a) = exp(-a^2)/sqrt(pi) / (a + 1/2/(a + 1/(a + 3/2/(a + ...)))).
    let f = a;
    let c = a;
    let d = 0;
    for (let n = 1; n < 200; n++) {
      const an = n / 2;
      d = a + an * d;
      d = d === 0 ? 1e-300 : 1 / d;
      c = a + an / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

/** TesseraGeluExact on plain arrays. */
export function referenceGeluExact(x: ArrayLike<number>): { y: Float32Array; dydx: Float32Array } {
  const y = new Float32Array(x.length);
  const dydx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    const cdf = 0.5 * (1 + erf(v * INV_SQRT2));
    y[i] = v * cdf;
    dydx[i] = cdf + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v);
  }
  return { y, dydx };
}
