import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { listLocalRuns } from '@tessera/core';
import { planMultirun, splitSweepValues, type SweepState } from '@tessera/sweeps';
import { builtinRegistries } from '@tessera/builtins';
import { runCli } from '../test-helpers.ts';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-multirun-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const exp = (...argv: string[]) => runCli(argv, { cwd: ROOT, registries: builtinRegistries });

describe('exp run -m (Hydra\u2019s multirun)', () => {
  it('splits values at top-level commas only: lists and quoted strings stay whole', () => {
    expect(splitSweepValues('0.01,0.003')).toEqual(['0.01', '0.003']);
    expect(splitSweepValues('[1,2],[3, 4]')).toEqual(['[1,2]', '[3, 4]']);
    expect(splitSweepValues('"a,b",c')).toEqual(['"a,b"', 'c']);
    expect(splitSweepValues('{a: 1, b: 2}')).toEqual(['{a: 1, b: 2}']);
  });

  it('sweeps the overrides with several values (their cross product), applies the others to every trial', () => {
    const plan = planMultirun(join(ROOT, 'experiments/smoke.yaml'), ['train.optimizer.learning_rate=0.01,0.003', 'train.epochs=1', 'model.layers.1.units=16,32'], {
      runsDir: tmp,
    });
    expect(plan.swept).toEqual({ 'train.optimizer.learning_rate': [0.01, 0.003], 'model.layers.1.units': [16, 32] });
    expect(plan.baseOverrides).toEqual(['train.epochs=1']);
    expect(plan.name).toMatch(/^smoke-multirun-[0-9a-f]{8}$/);
    // The same command gives the same sweep (and so resumes it).
    expect(planMultirun(join(ROOT, 'experiments/smoke.yaml'), ['train.optimizer.learning_rate=0.01,0.003', 'train.epochs=1', 'model.layers.1.units=16,32'], { runsDir: tmp }).file).toBe(plan.file);
  });

  it('without a swept value, or sweeping a key with + or ~, is a clear error (exit 2)', async () => {
    const none = await exp('run', 'experiments/smoke.yaml', '-m', '--set', 'train.epochs=1');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('-m (multirun) needs at least one --set KEY=A,B with several comma-separated values');
    const added = await exp('run', 'experiments/smoke.yaml', '-m', '--set', '+train.foo=1,2');
    expect(added.code).toBe(2);
    expect(added.stderr).toContain('a swept key cannot be added or deleted');
  });

  it('runs the grid as a sweep with a parent run; trials are named by what they tried', () => {
    const runsDir = join(tmp, 'runs');
    const args = ['packages/cli/src/bin.ts', 'run', 'experiments/smoke.yaml', '-m', '--set', 'train.optimizer.learning_rate=0.01,0.003', 'train.epochs=1', '--runs-dir', runsDir];
    const result = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), args, { cwd: ROOT, encoding: 'utf8', timeout: 170_000, env: { ...process.env, MLFLOW_TRACKING_URI: '' } });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('Multirun: a grid over 2 train.optimizer.learning_rate');
    const [sweepName] = readdirSync(join(runsDir, 'sweeps'));
    const state = JSON.parse(readFileSync(join(runsDir, 'sweeps', sweepName!, 'state.json'), 'utf8')) as SweepState;
    expect(state.trials.map((t) => [t.id, t.state, t.epochs.length, t.params])).toEqual([
      ['trial-000', 'FINISHED', 1, { 'train.optimizer.learning_rate': 0.01 }],
      ['trial-001', 'FINISHED', 1, { 'train.optimizer.learning_rate': 0.003 }],
    ]);
    return listLocalRuns({ root: runsDir }).then((rows) => {
      const parent = rows.find((row) => row.meta.runName === sweepName)!;
      expect(parent.meta.status).toBe('FINISHED');
      const children = rows.filter((row) => row.meta.parentRunId === parent.meta.runId);
      expect(children.map((row) => row.meta.runName).sort()).toEqual(['trial-000 lr=0.01', 'trial-001 lr=0.003']);
    });
  }, 180_000);
});
