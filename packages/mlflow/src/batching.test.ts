import { describe, expect, it } from 'vitest';
import { chunkLogBatch, type WireKeyValue, type WireMetric } from './batching.ts';
import { MLFLOW_LIMITS } from './validation.ts';

const metrics = (n: number): WireMetric[] =>
  Array.from({ length: n }, (_, i) => ({ key: `m${i % 7}`, value: i, timestamp: 1_700_000_000_000 + i, step: i }));
const keyValues = (n: number, value = 'v'): WireKeyValue[] => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value }));
const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

describe('chunkLogBatch', () => {
  it('splits 2,500 metrics into 1000 + 1000 + 500, in order', () => {
    const input = metrics(2500);
    const chunks = chunkLogBatch('r', { metrics: input, params: [], tags: [] });
    expect(chunks.map((c) => c.metrics.length)).toEqual([1000, 1000, 500]);
    expect(chunks.flatMap((c) => c.metrics)).toEqual(input);
    expect(chunks.every((c) => c.run_id === 'r')).toBe(true);
  });

  it('keeps params and tags to 100 each per request, params first, filling each request', () => {
    const chunks = chunkLogBatch('r', { metrics: metrics(10), params: keyValues(250), tags: keyValues(120) });
    expect(chunks.map((c) => [c.params.length, c.tags.length, c.metrics.length])).toEqual([
      [100, 0, 0],
      [100, 0, 0],
      [50, 100, 0],
      [0, 20, 10],
    ]);
  });

  it('never puts more than 1000 entities in one request', () => {
    const chunks = chunkLogBatch('r', { metrics: metrics(1000), params: keyValues(100), tags: [] });
    expect(chunks.map((c) => [c.params.length, c.metrics.length])).toEqual([
      [100, 900],
      [0, 100],
    ]);
  });

  it('splits by size: 90 tags of 8000 two-byte characters (1.44 MB) become two requests under 1 MB', () => {
    const tags = keyValues(90, 'é'.repeat(8000));
    const chunks = chunkLogBatch('r', { metrics: [], params: [], tags });
    expect(chunks.map((c) => c.tags.length)).toEqual([62, 28]);
    for (const chunk of chunks) expect(bytes(chunk)).toBeLessThanOrEqual(MLFLOW_LIMITS.batchBytes);
    // 62 tags fit and 63 would not: the split is at the limit, not before it.
    const firstPlusOne = { ...chunks[0]!, tags: [...chunks[0]!.tags, tags[62]!] };
    expect(bytes(firstPlusOne)).toBeGreaterThan(MLFLOW_LIMITS.batchBytes);
  });

  it('counts the request body exactly at the byte boundary', () => {
    const limits = { ...MLFLOW_LIMITS, batchBytes: 200 };
    const tags = keyValues(20, 'abcdefghij');
    const chunks = chunkLogBatch('r', { metrics: [], params: [], tags }, limits);
    for (const chunk of chunks) {
      expect(bytes(chunk)).toBeLessThanOrEqual(200);
      const next = tags[chunks.flatMap((c) => c.tags).indexOf(chunk.tags.at(-1)!) + 1];
      if (next && chunk !== chunks.at(-1)) expect(bytes({ ...chunk, tags: [...chunk.tags, next] })).toBeGreaterThan(200);
    }
    expect(chunks.flatMap((c) => c.tags)).toEqual(tags);
  });

  it('sends nothing for an empty batch and refuses an entity larger than a request', () => {
    expect(chunkLogBatch('r', { metrics: [], params: [], tags: [] })).toEqual([]);
    const limits = { ...MLFLOW_LIMITS, batchBytes: 100 };
    expect(() => chunkLogBatch('r', { metrics: [], params: [{ key: 'big', value: 'x'.repeat(100) }], tags: [] }, limits)).toThrow(
      'param "big" alone exceeds the 100-byte request limit',
    );
  });
});
