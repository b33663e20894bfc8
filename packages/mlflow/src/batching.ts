/**
 * Splits one logical log-batch into requests the server accepts: at most 1000 metrics, 100
 * params, 100 tags and 1000 entities in all per request, and at most 1 MB of JSON body. Entities
 * keep their order; params go first so a run's configuration lands before its metrics.
 */
import { invalidParameter } from './errors.ts';
import { MLFLOW_LIMITS } from './validation.ts';
import { encodeMetricValue, type WireNumber } from './values.ts';

export interface MetricInput {
  key: string;
  value: number;
  /** Milliseconds since the epoch; defaults to now. */
  timestamp?: number;
  step?: number;
  /** MLflow 3: the LoggedModel this metric describes (shown on the model's page). */
  modelId?: string;
}

export interface WireMetric {
  key: string;
  value: WireNumber;
  timestamp: number;
  step: number;
  model_id?: string;
}

export interface WireKeyValue {
  key: string;
  value: string;
}

export interface LogBatchBody {
  run_id: string;
  metrics: WireMetric[];
  params: WireKeyValue[];
  tags: WireKeyValue[];
}

export type BatchLimits = Pick<
  Record<keyof typeof MLFLOW_LIMITS, number>,
  'metricsPerBatch' | 'paramsPerBatch' | 'tagsPerBatch' | 'entitiesPerBatch' | 'batchBytes'
>;

const encoder = new TextEncoder();
const bytesOf = (value: unknown): number => encoder.encode(JSON.stringify(value)).length;

export function chunkLogBatch(
  runId: string,
  entities: { metrics: WireMetric[]; params: WireKeyValue[]; tags: WireKeyValue[] },
  limits: BatchLimits = MLFLOW_LIMITS,
): LogBatchBody[] {
  const empty = (): LogBatchBody => ({ run_id: runId, metrics: [], params: [], tags: [] });
  const emptyBytes = bytesOf(empty());
  const chunks: LogBatchBody[] = [];
  let current = empty();
  let bytes = emptyBytes;

  const add = <K extends 'metrics' | 'params' | 'tags'>(field: K, item: LogBatchBody[K][number], max: number) => {
    // One more element costs its JSON plus a comma, unless it is the first of its array.
    const cost = bytesOf(item) + (current[field].length > 0 ? 1 : 0);
    if (emptyBytes + bytesOf(item) > limits.batchBytes) {
      throw invalidParameter(`${field.slice(0, -1)} "${item.key}" alone exceeds the ${limits.batchBytes}-byte request limit`);
    }
    const count = current.metrics.length + current.params.length + current.tags.length;
    if (current[field].length >= max || count >= limits.entitiesPerBatch || bytes + cost > limits.batchBytes) {
      chunks.push(current);
      current = empty();
      bytes = emptyBytes;
      add(field, item, max);
      return;
    }
    (current[field] as LogBatchBody[K][number][]).push(item);
    bytes += cost;
  };

  for (const param of entities.params) add('params', param, limits.paramsPerBatch);
  for (const tag of entities.tags) add('tags', tag, limits.tagsPerBatch);
  for (const metric of entities.metrics) add('metrics', metric, limits.metricsPerBatch);
  if (current.metrics.length + current.params.length + current.tags.length > 0) chunks.push(current);
  return chunks;
}

export function toWireMetric(metric: MetricInput, now: number): WireMetric {
  return {
    key: metric.key,
    value: encodeMetricValue(metric.value),
    timestamp: metric.timestamp ?? now,
    step: metric.step ?? 0,
    ...(metric.modelId ? { model_id: metric.modelId } : {}),
  };
}
