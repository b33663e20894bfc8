import { describe, expect, it } from 'vitest';
import { decodeInt, decodeMetricValue, encodeMetricValue } from './values.ts';

describe('metric values on the wire', () => {
  it('spells non-finite values the way protobuf JSON (and MLflow) accepts them', () => {
    expect(JSON.stringify([NaN, Infinity, -Infinity, 0.25, -0].map(encodeMetricValue))).toBe('["NaN","Infinity","-Infinity",0.25,0]');
  });

  it('reads back what the SQL store returns: "NaN" and ±Number.MAX_VALUE for ±Infinity', () => {
    // Verbatim from a real server's get-history after logging NaN, Infinity, -Infinity, 1.5.
    const wire = JSON.parse('["NaN", 1.7976931348623157e+308, -1.7976931348623157e+308, 1.5]') as unknown[];
    expect(wire.map(decodeMetricValue)).toEqual([NaN, Infinity, -Infinity, 1.5]);
    expect(decodeMetricValue('Infinity')).toBe(Infinity);
    expect(decodeMetricValue('-Infinity')).toBe(-Infinity);
    expect(decodeMetricValue('2.5')).toBe(2.5);
  });

  it('reads int64 fields sent as strings', () => {
    expect(decodeInt('1700000000000')).toBe(1_700_000_000_000);
    expect(decodeInt(undefined)).toBeUndefined();
    expect(decodeInt('x')).toBeUndefined();
  });
});
