import { describe, expect, it } from 'vitest';
import { decide, defaultBrackets, rungs, type Curve, type EarlyTerminate, type Objective } from './early-stop.ts';

const acc: Objective = { metric: 'val_accuracy', goal: 'maximize' };
const loss: Objective = { metric: 'val_loss', goal: 'minimize' };
const curve = (index: number, values: number[]): Curve => ({ index, values });

describe('median stopping rule', () => {
  const rule: EarlyTerminate = { type: 'median', minEpochs: 2, minTrials: 2 };
  // Running averages at epoch 2: 0.3 and 0.2, median 0.25; the 1-epoch trial does not count.
  const others = [curve(0, [0.2, 0.4, 0.6]), curve(1, [0.1, 0.3, 0.5]), curve(2, [0.9])];

  it('stops a trial whose best so far is below the median of running averages', () => {
    const d = decide(rule, acc, curve(3, [0.1, 0.24]), others);
    expect(d.stop).toBe(true);
    expect(d.reason).toBe(
      "median stopping rule: best val_accuracy 0.2400 by epoch 2 vs the median 0.2500 of 2 other trials' running averages",
    );
  });

  it('keeps a trial whose best so far equals the median or beats it', () => {
    expect(decide(rule, acc, curve(3, [0.1, 0.25]), others).stop).toBe(false);
    // The best so far, not the latest value, is compared.
    expect(decide(rule, acc, curve(3, [0.26, 0.01]), others).stop).toBe(false);
  });

  it('waits for min_epochs and min_trials', () => {
    expect(decide(rule, acc, curve(3, [0.0]), others)).toEqual({ stop: false, reason: 'median: epoch 1 is before min_epochs 2' });
    const strict: EarlyTerminate = { type: 'median', minEpochs: 2, minTrials: 3 };
    expect(decide(strict, acc, curve(3, [0.0, 0.0]), others).reason).toBe(
      'median: 2 other trial(s) reached epoch 2, min_trials is 3',
    );
  });

  it('minimizes a loss: lower is better', () => {
    const losses = [curve(0, [4, 2]), curve(1, [5, 3]), curve(2, [3, 3])];
    // Running averages 3, 4, 3: median 3.
    expect(decide(rule, loss, curve(3, [5, 3.5]), losses).stop).toBe(true);
    expect(decide(rule, loss, curve(3, [5, 3]), losses).stop).toBe(false);
  });
});

describe('ASHA', () => {
  const rule: EarlyTerminate = { type: 'asha', gracePeriod: 1, reductionFactor: 3, maxEpochs: 10 };

  it('puts rungs at grace * eta^k strictly below max_epochs', () => {
    expect(rungs(1, 3, 10)).toEqual([1, 3, 9]);
    expect(rungs(1, 3, 9)).toEqual([1, 3]);
    expect(rungs(2, 2, 20)).toEqual([2, 4, 8, 16]);
  });

  it('keeps the top ceil(n / eta) of the trials that reached the rung so far', () => {
    // Trials arrive at rung 0 (epoch 1) one after another, asynchronously.
    const t0 = curve(0, [0.5]);
    expect(decide(rule, acc, t0, [])).toEqual({
      stop: false,
      reason: 'asha: val_accuracy 0.5000 at rung 0 (epoch 1) ranks 1 of 1, top 1 continue',
    });
    const t1 = curve(1, [0.4]);
    expect(decide(rule, acc, t1, [t0])).toEqual({
      stop: true,
      reason: 'asha: val_accuracy 0.4000 at rung 0 (epoch 1) ranks 2 of 2, top 1 continue',
    });
    const t2 = curve(2, [0.6]);
    expect(decide(rule, acc, t2, [t0, t1]).stop).toBe(false);
    // n = 4: the top 2 continue; 0.55 ranks second.
    expect(decide(rule, acc, curve(3, [0.55]), [t0, t1, t2]).stop).toBe(false);
    expect(decide(rule, acc, curve(3, [0.45]), [t0, t1, t2]).stop).toBe(true);
  });

  it('decides only at rungs, comparing values at that rung', () => {
    const leaders = [curve(0, [0.9, 0.9, 0.9]), curve(1, [0.8, 0.8, 0.8])];
    expect(decide(rule, acc, curve(2, [0.1, 0.1]), leaders)).toEqual({
      stop: false,
      reason: 'asha: epoch 2 is not a rung (1, 3, 9)',
    });
    expect(decide(rule, acc, curve(2, [0.1, 0.1, 0.1]), leaders).stop).toBe(true);
    // A trial pruned at epoch 1 does not count at rung 1 (epoch 3).
    expect(decide(rule, acc, curve(2, [0.1, 0.1, 0.85]), [...leaders, curve(3, [0.0])]).stop).toBe(true);
    expect(decide(rule, acc, curve(2, [0.1, 0.1, 0.95]), leaders).stop).toBe(false);
  });

  it('minimizes a loss', () => {
    expect(decide(rule, loss, curve(1, [2.0]), [curve(0, [1.0])]).stop).toBe(true);
    expect(decide(rule, loss, curve(1, [0.5]), [curve(0, [1.0])]).stop).toBe(false);
  });
});

describe('hyperband (brackets of ASHA)', () => {
  const rule: EarlyTerminate = { type: 'hyperband', gracePeriod: 1, reductionFactor: 3, maxEpochs: 9, brackets: 3 };

  it('defaults to s_max + 1 brackets', () => {
    expect(defaultBrackets(1, 3, 9)).toBe(3);
    expect(defaultBrackets(1, 3, 27)).toBe(4);
    expect(defaultBrackets(1, 3, 8)).toBe(2);
  });

  it('assigns trial i to bracket i mod brackets; bracket s starts at grace * eta^s', () => {
    // Bracket 1 (trials 1, 4, 7) has its only rung at epoch 3; bracket 0's strong trial is ignored.
    const others = [curve(0, [0.99, 0.99, 0.99]), curve(4, [0.2, 0.3, 0.4])];
    expect(decide(rule, acc, curve(1, [0.1]), others).reason).toBe('hyperband bracket 1: epoch 1 is not a rung (3)');
    expect(decide(rule, acc, curve(1, [0.1, 0.2, 0.5]), others)).toEqual({
      stop: false,
      reason: 'hyperband bracket 1: val_accuracy 0.5000 at rung 0 (epoch 3) ranks 1 of 2, top 1 continue',
    });
    expect(decide(rule, acc, curve(1, [0.1, 0.2, 0.3]), others).stop).toBe(true);
    // Bracket 0 uses rungs 1 and 3 among trials 0, 3, 6, ...
    expect(decide(rule, acc, curve(3, [0.5]), others).stop).toBe(true);
  });

  it('never stops a trial in the most conservative bracket (no rung below max_epochs)', () => {
    const others = [curve(5, [0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99])];
    for (let e = 1; e <= 9; e++) {
      expect(decide(rule, acc, curve(2, Array(e).fill(0.01)), others).stop).toBe(false);
    }
  });
});
