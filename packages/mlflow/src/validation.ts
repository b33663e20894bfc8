/**
 * MLflow's own rules for metric, param and tag keys and values (mlflow/utils/validation.py),
 * checked before sending so a bad key fails at once with a clear message instead of as a 400
 * halfway through a run.
 */
import { posix } from 'node:path';
import { invalidParameter } from './errors.ts';

/** The server's limits (mlflow/utils/validation.py, MLflow 2.x and 3.x). */
export const MLFLOW_LIMITS = {
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
  batchBytes: 1_000_000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
} as const;

export type EntityKind = 'metric' | 'param' | 'tag';

// Python's `\w` is Unicode-aware: letters and numbers of any script, plus the underscore.
const ALLOWED_KEY = /^[/\p{L}\p{N}_.\- :]*$/u;

/** Length as MLflow counts it: Unicode code points, not UTF-16 units. */
export function codePointLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
  return length;
}

export function validateKey(kind: EntityKind, key: unknown, where = ''): void {
  const label = `${kind} key${where}`;
  if (typeof key !== 'string' || key === '') {
    throw invalidParameter(`${label} must be a non-empty string, got ${JSON.stringify(key)}`);
  }
  if (!ALLOWED_KEY.test(key)) {
    const bad = [...new Set([...key].filter((char) => !ALLOWED_KEY.test(char)))];
    throw invalidParameter(
      `${label} ${JSON.stringify(key)} contains ${bad.map((c) => JSON.stringify(c)).join(', ')}; ` +
        'MLflow keys may only contain letters, digits, underscores (_), dashes (-), periods (.), ' +
        'spaces ( ), colons (:) and slashes (/)',
    );
  }
  if (!isNormalPath(key)) {
    throw invalidParameter(
      `${label} ${JSON.stringify(key)} is not a normalised path (MLflow may store keys as files); ` +
        `use ${JSON.stringify(suggestPath(key))}`,
    );
  }
  const length = codePointLength(key);
  if (length > MLFLOW_LIMITS.keyLength) {
    throw invalidParameter(`${label} is ${length} characters long; MLflow allows at most ${MLFLOW_LIMITS.keyLength}`);
  }
}

export function validateValue(kind: 'param' | 'tag', key: string, value: unknown): void {
  if (typeof value !== 'string') {
    throw invalidParameter(`${kind} ${JSON.stringify(key)}: value must be a string, got ${typeof value}`);
  }
  const limit = kind === 'param' ? MLFLOW_LIMITS.paramValueLength : MLFLOW_LIMITS.tagValueLength;
  const length = codePointLength(value);
  if (length > limit) {
    throw invalidParameter(
      `${kind} ${JSON.stringify(key)}: value is ${length} characters long; MLflow allows at most ${limit}`,
    );
  }
}

export function validateMetric(metric: { key: string; value: unknown; timestamp: unknown; step: unknown }, where = ''): void {
  validateKey('metric', metric.key, where);
  const name = JSON.stringify(metric.key);
  if (typeof metric.value !== 'number') {
    throw invalidParameter(`metric ${name}: value must be a number (NaN and ±Infinity allowed), got ${typeof metric.value}`);
  }
  if (!Number.isSafeInteger(metric.timestamp) || (metric.timestamp as number) < 0) {
    throw invalidParameter(`metric ${name}: timestamp must be a non-negative integer (ms since epoch), got ${String(metric.timestamp)}`);
  }
  if (!Number.isSafeInteger(metric.step)) {
    throw invalidParameter(`metric ${name}: step must be an integer, got ${String(metric.step)}`);
  }
}

// Mirrors mlflow.utils.validation.path_not_unique: the key must be its own normpath.
function isNormalPath(key: string): boolean {
  const normal = pythonNormpath(key);
  return normal === key && normal !== '.' && !normal.startsWith('..') && !normal.startsWith('/');
}

function pythonNormpath(path: string): string {
  const normal = posix.normalize(path);
  // Python's normpath drops a trailing slash; Node's keeps it.
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

function suggestPath(key: string): string {
  return pythonNormpath(key).replace(/^(\.\.\/)+|^\/+/g, '').replace(/^\.\.?$/, '') || 'a name';
}
