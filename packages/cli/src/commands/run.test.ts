import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadExperiment, readMetrics, readRunMeta, runExperiment, SYNC_STATE_FILE, type RunSummary } from '@tessera/core';
import { builtinRegistries } from '@tessera/builtins';
import { main } from '../main.ts';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const SMOKE = join(ROOT, 'experiments', 'smoke.yaml');
const runsDir = mkdtempSync(join(tmpdir(), 'tessera-run-test-'));
afterAll(() => rmSync(runsDir, { recursive: true, force: true }));

// MLFLOW_TRACKING_URI alone sends a run to MLflow: a developer's server must not receive these
// runs, in-process or spawned (the child's environment is built from process.env).
beforeAll(() => {
  for (const name of Object.keys(process.env).filter((key) => key.startsWith('MLFLOW_'))) vi.stubEnv(name, undefined);
});
afterAll(() => vi.unstubAllEnvs());

const silent = { write: () => true };
const registries = builtinRegistries();
// The interrupted runs need enough steps per epoch to be stopped in the middle of one. The smoke
// model's dropout stays on: its masks come from Math.random, which the trainer seeds per step.
const LONGER = ['train.epochs=4', 'train.batch_size=16'];

function sameMetrics(actual: Record<string, number>[], expected: Record<string, number>[]) {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((logs, epoch) => {
    for (const key of ['loss', 'accuracy', 'val_loss', 'val_accuracy', 'learning_rate']) {
      expect(actual[epoch]![key], `${key} at epoch ${epoch + 1}`).toBeCloseTo(logs[key]!, 5);
    }
  });
}

let reference: RunSummary | undefined;
async function uninterrupted(): Promise<RunSummary> {
  reference ??= await runExperiment(SMOKE, { registries, runsDir, overrides: LONGER, output: silent });
  return reference;
}

describe('exp run', () => {
  it('trains the smoke experiment well above chance in seconds, and records the run', async () => {
    const started = Date.now();
    const summary = await runExperiment(SMOKE, { registries, runsDir, output: silent });
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(summary.status).toBe('FINISHED');
    expect(summary.test!.test_accuracy).toBeGreaterThan(0.9); // 4 classes: chance is 0.25
    const meta = await readRunMeta(summary.runDir);
    expect(meta.status).toBe('FINISHED');
    const metrics = await readMetrics(summary.runDir);
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3]);
    expect(metrics[2]!.test_accuracy).toBe(summary.test!.test_accuracy);
    const run = JSON.parse(readFileSync(join(summary.runDir, 'artifacts', 'run.json'), 'utf8'));
    expect(run.seed).toBe(1);
    expect(run.provenance.packages['@tensorflow/tfjs']).toBe('4.22.0');
    expect(JSON.parse(readFileSync(join(summary.runDir, 'artifacts', 'config.json'), 'utf8')).train.epochs).toBe(3);
  });

  it('takes an already-loaded config object, as a program would pass it', async () => {
    const { config } = loadExperiment(SMOKE, { overrides: ['train.epochs=1'] });
    const summary = await runExperiment(config, { registries, runsDir, output: silent });
    expect(summary.status).toBe('FINISHED');
    expect(summary.history).toHaveLength(1);
    expect(JSON.parse(readFileSync(join(summary.runDir, 'artifacts', 'run.json'), 'utf8')).source).toBe('<config object>');
  });

  it('resumed after a stop in the middle of an epoch, matches the uninterrupted run', async () => {
    const expected = await uninterrupted();
    const stop = new AbortController();
    const output = { write: (text: string) => (text.startsWith('Epoch 2/') && setTimeout(() => stop.abort(), 0), true) };
    const stopped = await runExperiment(SMOKE, { registries, runsDir, overrides: LONGER, output, progress: 'plain', signal: stop.signal });
    expect(stopped.status).toBe('KILLED');
    expect((await readRunMeta(stopped.runDir)).status).toBe('KILLED');
    const resumed = await runExperiment(undefined, { registries, runsDir, resume: stopped.runId, output: silent });
    expect(resumed.status).toBe('FINISHED');
    expect(resumed.runId).toBe(stopped.runId);
    sameMetrics(resumed.history, expected.history);
    expect(resumed.test!.test_loss).toBeCloseTo(expected.test!.test_loss!, 5);
    sameMetrics((await readMetrics(resumed.runDir)) as never, expected.history);
  });

  it('on SIGINT finishes the step, checkpoints, exits 130 as KILLED; --resume then completes it', async () => {
    const expected = await uninterrupted();
    const bin = join(ROOT, 'packages', 'cli', 'src', 'bin.ts');
    const args = ['run', SMOKE, '--runs-dir', runsDir, ...LONGER.flatMap((o) => ['--set', o])];
    // `node --import tsx`, not the tsx CLI: the tsx CLI runs the program in a child process and
    // SIGKILLs it when it has not acknowledged a relayed signal within 30 ms, which a busy
    // training step cannot do on a loaded machine.
    const child = spawn(process.execPath, ['--import', 'tsx', bin, ...args], { cwd: ROOT, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let signalled = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!signalled && stdout.includes('Epoch 2/')) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(code, `${stdout}\n${stderr}`).toBe(130);
    const runId = /Resume with: exp run --resume (\S+)/.exec(stdout)?.[1];
    expect(runId, stdout).toBeDefined();
    const runDir = join(runsDir, 'smoke', runId!);
    const meta = await readRunMeta(runDir);
    expect(meta.status).toBe('KILLED');
    expect(JSON.parse(readFileSync(join(runDir, 'checkpoint', 'state.json'), 'utf8')).epoch).toBe(1);

    const out: string[] = [];
    const resumedCode = await main(['run', '--resume', runId!, '--runs-dir', runsDir], { stdout: { write: (t: string) => out.push(t) }, stderr: silent });
    expect(resumedCode).toBe(0);
    expect((await readRunMeta(runDir)).status).toBe('FINISHED');
    const metrics = await readMetrics(runDir);
    sameMetrics(metrics.slice(0, 4) as never, expected.history);
  });

  it('stops a diverging run as FAILED, naming the step, exit 1', async () => {
    const err: string[] = [];
    const code = await main(
      ['run', SMOKE, '--runs-dir', runsDir, '--set', 'train.optimizer={type: sgd, learning_rate: 1.0e+30}', '--set', 'train.callbacks=[]'],
      { stdout: silent, stderr: { write: (t: string) => err.push(t) } },
    );
    expect(code).toBe(1);
    expect(err.join('')).toMatch(/training diverged: loss is (NaN|Infinity) at epoch 1, step \d+ \(optimizer step \d+\)/);
    const metas = await Promise.all(readdirSync(join(runsDir, 'smoke')).map((id) => readRunMeta(join(runsDir, 'smoke', id))));
    const failed = metas.filter((m) => m.status === 'FAILED');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.error).toMatch(/^NonFiniteLossError: loss is (NaN|Infinity) at epoch 1/);
  });

  it('--register NAME without an MLflow server is refused before training (exit 2, no run recorded)', async () => {
    const runs = () => (existsSync(join(runsDir, 'smoke')) ? readdirSync(join(runsDir, 'smoke')).length : 0);
    const before = runs();
    let stderr = '';
    const code = await main(['run', SMOKE, '--register', 'smoke-classifier', '--runs-dir', runsDir], { stdout: silent, stderr: { write: (text: string) => (stderr += text) } });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^exp run: --register NAME needs an MLflow server to register in: set MLFLOW_TRACKING_URI/);
    expect(runs()).toBe(before);
  });

  it('logged none of these runs to MLflow, whatever MLFLOW_* the developer has set', () => {
    expect(Object.keys(process.env).filter((key) => key.startsWith('MLFLOW_'))).toEqual([]);
    const runDirs = readdirSync(join(runsDir, 'smoke')).map((id) => join(runsDir, 'smoke', id));
    expect(runDirs.length).toBeGreaterThanOrEqual(5);
    expect(runDirs.filter((dir) => existsSync(join(dir, SYNC_STATE_FILE)))).toEqual([]);
  });
});
