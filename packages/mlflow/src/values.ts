/**
 * Metric values on the wire. JSON has no NaN or Infinity (JSON.stringify writes `null`), and
 * MLflow's REST API follows protobuf's JSON mapping, which spells them as the strings "NaN",
 * "Infinity" and "-Infinity". MLflow's SQL stores keep ±Infinity as ±Number.MAX_VALUE and
 * answer with that, so reading maps ±MAX_VALUE back to ±Infinity: what was logged comes back.
 */

export type WireNumber = number | 'NaN' | 'Infinity' | '-Infinity';

export function encodeMetricValue(value: number): WireNumber {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

export function decodeMetricValue(value: unknown): number {
  if (typeof value === 'number') {
    if (value === Number.MAX_VALUE) return Infinity;
    if (value === -Number.MAX_VALUE) return -Infinity;
    return value;
  }
  if (typeof value === 'string') {
    if (value === 'NaN') return NaN;
    if (value === 'Infinity' || value === 'inf') return Infinity;
    if (value === '-Infinity' || value === '-inf') return -Infinity;
    const parsed = Number(value);
    if (!Number.isNaN(parsed)) return parsed;
  }
  return NaN;
}

/** int64 fields may arrive as strings under protobuf's JSON mapping. */
export function decodeInt(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const parsed = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}
