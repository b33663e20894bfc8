import { redactSecrets } from '@tessera/core/safety';
import type { Output } from './command.ts';

const UNDERLYING = Symbol('underlying output');

/**
 * The same output (isTTY, columns, ...) with secrets masked in every write, by the one redaction
 * function: everything the CLI prints (results, progress, errors) passes it.
 */
export function redacting<T extends Output>(output: T): T {
  return new Proxy(output, {
    get(target, property) {
      if (property === UNDERLYING) return target;
      if (property === 'write') return (text: unknown, ...rest: unknown[]) => (target.write as (...a: unknown[]) => unknown)(typeof text === 'string' ? redactSecrets(text) : text, ...rest);
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The stream behind a redacting output (e.g. to ask whether it is process.stdout). */
export function underlying(output: Output): Output {
  return ((output as { [UNDERLYING]?: Output })[UNDERLYING] as Output | undefined) ?? output;
}
