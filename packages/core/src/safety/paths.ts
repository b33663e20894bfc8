import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/**
 * Names are data, not paths. An experiment name, a sweep name, a run id or a run name becomes
 * one directory level under the run store; nothing a config, a `--set` or a program passes may
 * climb out of it (`../../elsewhere`), point elsewhere (`/etc`), or hide (`.x`).
 *
 * The ONE path-safety check of Tessera: the schema's `name` pattern is this regex, and every join
 * under the run store goes through `containedJoin`.
 */
export const SAFE_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.@+=, -]{0,199}$';
const SAFE_NAME = new RegExp(SAFE_NAME_PATTERN);

export class UnsafePathError extends Error {
  override name = 'UnsafePathError';
}

/** Why `name` cannot be one directory level, or undefined when it can. */
export function unsafeNameReason(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (name.includes('/') || name.includes('\\')) return 'it contains a path separator';
  if (name.includes('\u0000')) return 'it contains a NUL character';
  if (name === '.' || name === '..' || name.startsWith('.')) return 'it starts with "."';
  if (name.length > 200) return 'it is longer than 200 characters';
  if (!SAFE_NAME.test(name)) return 'it may use only letters, digits, space and _ . @ + = , -';
  return undefined;
}

/** Throws unless `name` is a plain, single path segment (see SAFE_NAME_PATTERN). */
export function assertSafeName(name: string, what: string): string {
  const reason = unsafeNameReason(name);
  if (reason) throw new UnsafePathError(`${what} ${JSON.stringify(name)} cannot name a directory: ${reason}`);
  return name;
}

/**
 * `root/part/part...`, refusing any result outside `root` (a `..`, an absolute part, a drive).
 * Relative parts may contain `/` (an artifact path such as `best_model/weights.bin`).
 */
export function containedJoin(root: string, ...parts: string[]): string {
  const base = resolve(root);
  for (const part of parts) {
    if (part.includes('\u0000') || isAbsolute(part)) throw new UnsafePathError(`path ${JSON.stringify(part)} is not relative to ${base}`);
  }
  const target = resolve(join(base, ...parts));
  const rel = relative(base, target);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new UnsafePathError(`path ${JSON.stringify(parts.join('/'))} leaves ${base}`);
  }
  return target;
}
