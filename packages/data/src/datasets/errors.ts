/** A problem with a data file: the message starts with the file and says what is wrong. */
export class DataError extends Error {
  override name = 'DataError';

  constructor(
    readonly file: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}
