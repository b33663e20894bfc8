import { relative, isAbsolute } from 'node:path';
import type { SourceLocation } from './registry/kinds.ts';
import { redactSecrets } from './safety/redact.ts';

/** A path into a config: `['model', 'layers', 3, 'units']`, printed as `model.layers[3].units`. */
export type ConfigPath = readonly (string | number)[];

/** Prefix of `SourceLocation.file` for values that came from a `--set` command-line override. */
export const OVERRIDE_PREFIX = '--set ';

export interface ConfigErrorInit {
  /** Where the offending value (or key) was written; absent when it cannot be known. */
  location?: SourceLocation | undefined;
  path?: ConfigPath;
  /** What should have been there, e.g. `integer` or `a value > 0`. */
  expected?: string;
  /** What was there, already described for humans: use `describeValue`. */
  found?: string;
  /** A free-form message, used instead of "expected X, got Y" when given. */
  message?: string;
  /** A suggestion such as `did you mean "units"?`. */
  hint?: string;
}

/** `model.layers[3].units`; the empty path (the whole document) prints as "". */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/**
 * `experiments/x.yaml:14:9` relative to `cwd` (absolute when the file lies outside it, so the
 * same file reads the same from any working directory), or the override argument in quotes.
 */
export function formatLocation(location: SourceLocation, cwd = process.cwd()): string {
  // A command-line argument (`--set a=1`, `--where val_loss<3`) is quoted, without a line and column.
  if (location.file.startsWith(OVERRIDE_PREFIX) || location.file.startsWith('--')) return `"${location.file}"`;
  const shown = isAbsolute(location.file) ? relative(cwd, location.file) : location.file;
  const file = !shown || shown.startsWith('..') ? location.file : shown;
  return `${file}:${location.line}:${location.col}`;
}

/** Names a value the way a user would: `string "256x"`, `-3`, `a list`, `null`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') {
    // Error messages end up in logs: never print a secret (the one redaction function).
    const shown = redactSecrets(value);
    return `string ${JSON.stringify(shown.length > 60 ? `${shown.slice(0, 57)}...` : shown)}`;
  }
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/**
 * An error about a config value: where it was written, which key, what was expected, what was
 * found and, when we can guess, a hint. The CLI prints `render()` without a stack trace, exit 2.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly location: SourceLocation | undefined;
  readonly path: ConfigPath;
  readonly expected: string | undefined;
  readonly found: string | undefined;
  readonly hint: string | undefined;
  /** The sentence after the path, without location or hint. */
  readonly detail: string;

  constructor(init: ConfigErrorInit, options?: { cause?: unknown }) {
    const detail =
      init.message ??
      (init.expected !== undefined
        ? `expected ${init.expected}${init.found !== undefined ? `, got ${init.found}` : ''}`
        : 'invalid value');
    super(ConfigError.compose(init.location, init.path ?? [], detail, init.hint), options);
    this.location = init.location;
    this.path = init.path ?? [];
    this.expected = init.expected;
    this.found = init.found;
    this.hint = init.hint;
    this.detail = detail;
  }

  /** `experiments/x.yaml:14:9 model.layers[3].units: expected integer, got string "256x"`. */
  render(cwd = process.cwd()): string {
    return ConfigError.compose(this.location, this.path, this.detail, this.hint, cwd);
  }

  /** The pieces of `render()`, for a terminal that styles them. */
  parts(cwd = process.cwd()): { location: string | undefined; path: string; detail: string; hint: string | undefined } {
    return { location: this.location && formatLocation(this.location, cwd), path: formatPath(this.path), detail: this.detail, hint: this.hint };
  }

  private static compose(
    location: SourceLocation | undefined,
    path: ConfigPath,
    detail: string,
    hint: string | undefined,
    cwd?: string,
  ): string {
    const where = location ? `${formatLocation(location, cwd)} ` : '';
    const key = formatPath(path);
    return `${where}${key ? `${key}: ` : ''}${detail}${hint ? `; ${hint}` : ''}`;
  }
}

/** Several ConfigErrors reported at once (e.g. every schema error, one per bad node). */
export class ConfigErrors extends Error {
  override name = 'ConfigErrors';

  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }

  render(cwd = process.cwd()): string {
    return this.errors.map((e) => e.render(cwd)).join('\n');
  }
}

export function isConfigError(error: unknown): error is ConfigError | ConfigErrors {
  return error instanceof ConfigError || error instanceof ConfigErrors;
}

/** The individual errors of a ConfigError or ConfigErrors, sorted by file and position. */
export function configErrorsOf(error: ConfigError | ConfigErrors): ConfigError[] {
  const list = error instanceof ConfigErrors ? [...error.errors] : [error];
  return list.sort((a, b) => {
    const la = a.location;
    const lb = b.location;
    if (!la || !lb) return la ? -1 : lb ? 1 : 0;
    return la.file.localeCompare(lb.file) || la.line - lb.line || la.col - lb.col;
  });
}

/** Throws one ConfigError as itself and several as ConfigErrors; nothing when the list is empty. */
export function throwIfAny(errors: readonly ConfigError[]): void {
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new ConfigErrors(errors);
}
