import { describe, expect, it } from 'vitest';
import { constantSchedule, cosineSchedule } from './schedules.ts';

const ctx = { baseLearningRate: 0.1, totalSteps: 110, stepsPerEpoch: 10 };

describe('schedules', () => {
  it('constant', () => {
    expect(constantSchedule()(57, ctx)).toBe(0.1);
  });

  it('cosine: linear warmup, then half a cosine down to alpha * base', () => {
    const s = cosineSchedule({ warmup_epochs: 1, alpha: 0.1 });
    expect(s(0, ctx)).toBe(0);
    expect(s(5, ctx)).toBeCloseTo(0.05, 10);
    expect(s(10, ctx)).toBeCloseTo(0.1, 10);
    // Halfway through the 100 decay steps: 0.1 * ((1 - 0.1) * 0.5 + 0.1) = 0.055.
    expect(s(60, ctx)).toBeCloseTo(0.055, 10);
    expect(s(110, ctx)).toBeCloseTo(0.01, 10);
    expect(s(500, ctx)).toBeCloseTo(0.01, 10);
  });
});
