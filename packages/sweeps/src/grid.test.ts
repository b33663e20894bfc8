import { describe, expect, it } from 'vitest';
import { gridPoint, gridSize } from './grid.ts';
import type { Parameter } from './space.ts';

const parameters: Parameter[] = [
  { path: 'train.optimizer.learning_rate', distribution: { type: 'categorical', values: [0.1, 0.01] } },
  { path: 'model.vars.embedding_dim', distribution: { type: 'categorical', values: [128, 256, 512] } },
  { path: 'train.batch_size', distribution: { type: 'int_uniform', min: 1, max: 2 } },
];

describe('grid search', () => {
  it('enumerates the full Cartesian product, last parameter fastest', () => {
    expect(gridSize(parameters)).toBe(12);
    const all = Array.from({ length: 12 }, (_, i) => gridPoint(parameters, i)!);
    const tuples = all.map((p) => Object.values(p));
    expect(tuples).toEqual([
      [0.1, 128, 1], [0.1, 128, 2], [0.1, 256, 1], [0.1, 256, 2], [0.1, 512, 1], [0.1, 512, 2],
      [0.01, 128, 1], [0.01, 128, 2], [0.01, 256, 1], [0.01, 256, 2], [0.01, 512, 1], [0.01, 512, 2],
    ]);
    // Keys keep file order; every point is distinct.
    expect(Object.keys(all[0]!)).toEqual(parameters.map((p) => p.path));
    expect(new Set(tuples.map((t) => JSON.stringify(t))).size).toBe(12);
  });

  it('is exhausted past the last point', () => {
    expect(gridPoint(parameters, 12)).toBeNull();
    expect(gridPoint(parameters, -1)).toBeNull();
  });

  it('refuses a continuous parameter', () => {
    const bad: Parameter[] = [{ path: 'x', distribution: { type: 'uniform', min: 0, max: 1 } }];
    expect(() => gridSize(bad)).toThrow(/cannot enumerate the uniform parameter "x"/);
  });
});
