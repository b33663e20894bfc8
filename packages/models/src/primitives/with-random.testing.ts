/** Runs `fn` with Math.random replaced by a fixed sequence, as the trainer seeds it per step. */
export function withRandom<T>(values: number[], fn: () => T): T {
  const original = Math.random;
  let i = 0;
  Math.random = () => values[i++ % values.length]!;
  try {
    return fn();
  } finally {
    Math.random = original;
  }
}
