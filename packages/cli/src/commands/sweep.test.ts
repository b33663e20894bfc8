import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { SweepState } from '@tessera/sweeps';
import { runCli } from '../test-helpers.ts';
import { builtinRegistries } from '@tessera/builtins';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-sweep-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const exp = (...argv: string[]) => runCli(argv, { cwd: ROOT, registries: builtinRegistries });

describe('exp sweep', () => {
  it('validates both bundled sweeps against the full experiment schema (--dry-run)', async () => {
    const fnet = await exp('sweep', 'experiments/sweeps/fnet-lr.yaml', '--dry-run');
    expect(fnet.stderr).toBe('');
    expect(fnet.code).toBe(0);
    expect(fnet.stdout).toContain(
      'ok experiments/sweeps/fnet-lr.yaml: bayes search over 3 parameter(s) of experiments/fnet.yaml, 40 trial(s), 1 at a time, maximize val_accuracy, early termination: asha',
    );
    expect(fnet.stdout).toContain('... then 30 trial(s) chosen by TPE from the results');

    const smoke = await exp('sweep', 'experiments/sweeps/smoke-grid.yaml', '--dry-run');
    expect(smoke.code).toBe(0);
    expect(smoke.stdout.split('\n').slice(1, 5)).toEqual([
      '  trial-000  train.optimizer.learning_rate=0.01 model.layers.1.units=16',
      '  trial-001  train.optimizer.learning_rate=0.01 model.layers.1.units=32',
      '  trial-002  train.optimizer.learning_rate=0.003 model.layers.1.units=16',
      '  trial-003  train.optimizer.learning_rate=0.003 model.layers.1.units=32',
    ]);
  });

  it('rejects a value that makes the experiment invalid, located at the parameter, exit 2', async () => {
    const file = join(tmp, 'bad-values.yaml');
    writeFileSync(
      file,
      [
        `experiment: ${join(ROOT, 'experiments/smoke.yaml')}`,
        'method: grid',
        'objective: {metric: val_loss, goal: minimize}',
        'parameters:',
        '  model.layers.1.units: {values: [16, -4]}',
        '',
      ].join('\n'),
    );
    const result = await exp('sweep', file, '--dry-run');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}:5:3 parameters["model.layers.1.units"]: model.layers.1.units=-4 makes an invalid experiment: model.layers[1].units:`);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('rejects a bad option value with a usage error', async () => {
    const result = await exp('sweep', 'experiments/sweeps/smoke-grid.yaml', '--parallel', '0');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--parallel expects an integer >= 1, got "0"');
  });

  it(
    'runs two smoke trials in parallel as exp run processes, then resumes without rerunning them',
    () => {
      const runsDir = join(tmp, 'runs');
      const args = ['packages/cli/src/bin.ts', 'sweep', 'experiments/sweeps/smoke-grid.yaml', '--max-trials', '2', '--runs-dir', runsDir];
      const first = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), args, { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      const state = JSON.parse(readFileSync(join(runsDir, 'sweeps/smoke-grid/state.json'), 'utf8')) as SweepState;
      expect(state.trials.map((t) => [t.id, t.state, t.epochs.length])).toEqual([
        ['trial-000', 'FINISHED', 3],
        ['trial-001', 'FINISHED', 3],
      ]);
      for (const trial of state.trials) {
        // The objective is the last epoch's val_loss as the run recorded it.
        expect(trial.finalMetric).toBe(trial.epochs[2]!.val_loss);
        expect(trial.epochs[2]!.val_accuracy).toBeGreaterThan(0.5); // 4 classes: chance is 0.25
        const runDir = join(runsDir, 'sweeps/smoke-grid/trials', trial.id, 'attempt-1/smoke', trial.runId!);
        const tags = JSON.parse(readFileSync(join(runDir, 'tags.json'), 'utf8'));
        expect(tags['sweep.trial']).toBe(trial.id);
        expect(JSON.parse(tags['tessera.overrides'])).toEqual(trial.overrides);
      }
      expect(first.stdout).toMatch(/Best: trial-00[01]; rerun it with: exp run experiments\/smoke.yaml --set train.optimizer.learning_rate=0.01 --set model.layers.1.units=(16|32)/);
      expect(first.stdout).toContain(`Register its model in MLflow with: exp register ${state.runId} NAME`);

      const again = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      expect(again.status).toBe(0);
      expect(again.stdout).toContain('resuming smoke-grid: 2 trial(s) done, 0 to (re)run');
      expect(again.stdout).not.toContain('started');
    },
    180_000,
  );
});
