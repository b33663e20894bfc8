import { createHash } from 'node:crypto';

/**
 * A stable 16-hex-digit fingerprint of a JSON value: sha256 of its JSON with object keys sorted
 * (and undefined members left out), so two configs that differ only in key order match. The
 * one fingerprint for configs: a sweep's definition, a dataset's cache key, a saved model's
 * config digest (its first 12 digits).
 */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16);
}

/** JSON with object keys sorted at every level. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
