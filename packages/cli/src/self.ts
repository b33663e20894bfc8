import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

// bin.ts under tsx (the source), bin.js once built: this module's own extension says which.
const BIN = fileURLToPath(new URL(`./bin${extname(import.meta.url)}`, import.meta.url));

/**
 * `exp` as a child command line (sweep trials, queue workers): this same CLI under the same
 * Node flags (e.g. tsx's loader and the source condition), minus a debugger's, whose port the
 * children would fight over.
 */
export function expCommand(): string[] {
  return [process.execPath, ...process.execArgv.filter((flag) => !flag.startsWith('--inspect')), BIN];
}
