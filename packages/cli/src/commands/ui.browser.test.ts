import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { MlflowClient, freePort, type Run } from '@tessera/mlflow';
import { locateMlflowForTests } from '@tessera/mlflow/testing';
import { locateChromiumForTests, testArtifactsDir } from '../browser-testing.ts';
import { runCli, runExpProcess } from '../test-helpers.ts';

/*
 * `exp ui` end to end, as a user meets it: the real command in its own process, a real MLflow
 * server on <runs>/.mlflow/, a real 4-trial smoke sweep and two plain runs recorded while it is
 * open, and Debian's Chromium (through playwright-core) looking at MLflow's own UI.
 */
const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-ui-'));
const runsDir = join(tmp, 'runs');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

/** `exp ...` as a child process (the way a user starts it), with its output collected. */
function exp(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/cli/src/bin.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: 'true', TESSERA_RUNS_DIR: runsDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, exited, output: () => output };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, log: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('exp ui without a server of its own', () => {
  it('with --uri (or MLFLOW_TRACKING_URI) prints that server\u2019s URL and starts nothing', async () => {
    const result = await runCli(['ui', '--uri', 'http://127.0.0.1:9', '--runs-dir', runsDir], { cwd: ROOT });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('MLflow UI: http://127.0.0.1:9');
    expect(result.stdout).toContain('Model training');
  });

  it('without MLflow installed says how to install it, exit 1, no stack trace', async () => {
    const saved = process.env.MLFLOW_BIN;
    const savedUri = process.env.MLFLOW_TRACKING_URI;
    process.env.MLFLOW_BIN = join(tmp, 'no-mlflow-here');
    delete process.env.MLFLOW_TRACKING_URI;
    try {
      const result = await runCli(['ui', '--runs-dir', runsDir], { cwd: ROOT });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('MLflow is not installed');
      expect(result.stderr).toContain('corepack pnpm setup:mlflow');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      if (saved === undefined) delete process.env.MLFLOW_BIN;
      else process.env.MLFLOW_BIN = saved;
      if (savedUri !== undefined) process.env.MLFLOW_TRACKING_URI = savedUri;
    }
  });
});

describe('exp ui in a real browser', () => {
  const mlflow = locateMlflowForTests();
  const chromium = locateChromiumForTests();

  it('shows a sweep as a parent with 4 named children, compares them with parallel coordinates, shows a run\u2019s PNG', async (context) => {
    if (!mlflow.binary) return context.skip(mlflow.skipReason);
    if (!chromium.executable) return context.skip(chromium.skipReason);
    const shots = testArtifactsDir('exp-ui');
    const port = await freePort();
    const env = { MLFLOW_BIN: mlflow.binary, MLFLOW_TRACKING_URI: '' };

    // 1. exp ui on an empty store, then runs recorded locally while it is open.
    const ui = exp(['ui', '--port', String(port), '--interval', '1'], env);
    await waitFor('exp ui to print its URL', () => (ui.output().includes('MLflow UI:') ? true : undefined), 150_000, ui.output);
    const uri = `http://127.0.0.1:${port}`;
    expect(ui.output()).toContain(`MLflow UI: ${uri}`);

    const sweep = exp(['sweep', 'experiments/sweeps/smoke-grid.yaml'], env);
    const plain = [exp(['run', 'experiments/smoke.yaml', '--epochs', '2'], env)];
    expect(await plain[0]!.exited, plain[0]!.output()).toBe(0);
    plain.push(exp(['run', 'experiments/smoke.yaml', '--epochs', '2', '--set', 'seed=2'], env));
    expect(await plain[1]!.exited, plain[1]!.output()).toBe(0);
    expect(await sweep.exited, sweep.output()).toBe(0);

    // 2. exp ui sends them (it polls every second): 1 sweep run, 4 trials, 2 plain runs, all FINISHED.
    const client = new MlflowClient({ trackingUri: uri });
    const experimentId = await waitFor('the smoke experiment', async () => (await client.getExperimentByName('smoke'))?.experimentId, 60_000, ui.output);
    const runs = await waitFor(
      'exp ui to sync 7 finished runs with the best trial linked',
      async () => {
        const all = await client.searchAllRuns({ experimentIds: [experimentId] });
        const done = all.length === 7 && all.every((r) => r.info.status === 'FINISHED') && all.some((r) => r.data.tags.best_run_id);
        return done ? all : undefined;
      },
      120_000,
      ui.output,
    );
    const parent = runs.find((r) => r.info.runName === 'smoke-grid')!;
    const trials = runs.filter((r) => r.data.tags['mlflow.parentRunId'] === parent.info.runId);
    expect(trials.map((r) => r.info.runName).sort()).toEqual([
      'trial-000 lr=0.01 units=16',
      'trial-001 lr=0.01 units=32',
      'trial-002 lr=0.003 units=16',
      'trial-003 lr=0.003 units=32',
    ]);
    // best_run_id is an MLflow run id: the trial with the lowest val_loss.
    const best = trials.reduce((a, b) => (metric(a, 'val_loss') <= metric(b, 'val_loss') ? a : b));
    expect(parent.data.tags.best_run_id).toBe(best.info.runId);
    const plainRuns = runs.filter((r) => r !== parent && !trials.includes(r));
    expect(plainRuns.map((r) => r.info.runName)).toEqual(expect.arrayContaining([expect.stringMatching(/^smoke-[0-9a-f]{6}$/)]));
    expect((await client.getExperiment(experimentId)).tags['mlflow.experimentKind']).toBe('custom_model_development');

    // 3. The browser.
    const { chromium: playwright } = await import('playwright-core');
    const browser = await playwright.launch({ executablePath: chromium.executable, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
      const nameCells = page.locator('[role=gridcell][col-id="attributes.`Run Name`"]');

      // The run list: the sweep's run, expanded, shows its 4 trials by what they tried.
      await page.goto(`${uri}/#/experiments/${experimentId}/runs?workflowType=machine_learning`);
      const parentCell = nameCells.filter({ hasText: 'smoke-grid' });
      await parentCell.waitFor({ timeout: 60_000 });
      await parentCell.locator('button').first().click();
      await page.getByText('trial-003 lr=0.003 units=32').waitFor({ timeout: 30_000 });
      const names = (await nameCells.allInnerTexts()).map((text) => text.split('\n').at(-1)!.trim());
      expect(names.filter((name) => name.startsWith('trial-')).sort()).toEqual(trials.map((r) => r.info.runName).sort());
      expect(names).toContain('smoke-grid');
      await page.screenshot({ path: join(shots, 'runs.png') });

      // The compare page of the 4 trials opens on a parallel-coordinates plot of the swept params
      // (and model_params, which the units change) against the sweep's objective, val_loss.
      const ids = JSON.stringify(trials.map((r) => r.info.runId));
      await page.goto(`${uri}/#/compare-runs?runs=${encodeURIComponent(ids)}&experiments=${encodeURIComponent(JSON.stringify([experimentId]))}&workflowType=machine_learning`);
      await page.locator('.parcoords').first().waitFor({ timeout: 60_000 });
      const axes = await page.locator('.parcoords .axis-title').evaluateAll((titles) => titles.map((title) => title.textContent));
      expect(axes).toEqual(['model.layers.1.units', 'model_params', 'train.optimizer.learning_rate', 'val_loss']);
      await page.screenshot({ path: join(shots, 'compare.png'), fullPage: true });

      // A trial's artifacts: the learning curve PNG renders.
      await page.goto(`${uri}/#/experiments/${experimentId}/runs/${best.info.runId}/artifacts/plots/loss.png`);
      const image = page.locator('img[src^="blob:"]').first();
      await image.waitFor({ timeout: 60_000 });
      await expect.poll(() => image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), { timeout: 30_000 }).toBeGreaterThan(100);
      await page.screenshot({ path: join(shots, 'artifact-png.png') });
    } finally {
      await browser.close();
    }

    // With MLFLOW_TRACKING_URI set, exp ui starts nothing and prints that server's URL of the experiment.
    const remote = await runExpProcess(['ui', '--runs-dir', runsDir], { cwd: ROOT, env: { ...process.env, MLFLOW_TRACKING_URI: uri } });
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stdout).toContain(`MLflow UI: ${uri}  (runs go there directly: MLFLOW_TRACKING_URI is set)`);
    expect(remote.stdout).toContain(`  smoke: ${uri}/#/experiments/${experimentId}/runs?workflowType=machine_learning`);

    // 4. Ctrl-C stops the server; starting again finds everything synced and sends nothing.
    ui.child.kill('SIGINT');
    expect(await ui.exited, ui.output()).toBe(0);
    await expect(fetch(`${uri}/health`)).rejects.toThrow();
    const again = exp(['ui', '--port', String(port), '--interval', '1'], env);
    await waitFor('exp ui to start again', () => (again.output().includes('MLflow UI:') ? true : undefined), 150_000, again.output);
    expect(again.output()).toContain('(0 run(s) synced');
    expect(await client.searchAllRuns({ experimentIds: [experimentId] })).toHaveLength(7);
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  }, 600_000);
});

function metric(run: Run, key: string): number {
  return run.data.metrics.find((m) => m.key === key)?.value ?? Number.POSITIVE_INFINITY;
}
