import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { builtinRegistries } from '@tessera/builtins';
import { importModel, predictImages } from '@tessera/core';
import { normalisedRecords, recordImage, runCli, runExpProcess, smallRecords, startExpServe } from '../test-helpers.ts';

/*
 * A model trained with a plugin block (examples/plugins: ResMLP's `affine`) used after training:
 * exp predict, evaluate, serve and export load the plugins the model recorded. Each runs as a
 * child process of its own, as users start it: in this process the plugin's layer class is
 * already registered with TF.js by the training, which would hide a command that forgets it.
 */

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const AFFINE = join(ROOT, 'examples', 'plugins', 'affine.ts');
const EXAMPLE = join(ROOT, 'examples', 'plugins', 'resmlp.yaml');
const work = mkdtempSync(join(tmpdir(), 'tessera-plugin-models-'));
const runsDir = join(work, 'runs');
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => {
  for (const name of Object.keys(process.env).filter((key) => key.startsWith('MLFLOW_'))) vi.stubEnv(name, undefined);
});
afterAll(() => vi.unstubAllEnvs());

type Predictions = { predictions: { probabilities: number[] }[] };

describe('a model with a plugin block, after training', () => {
  let runId: string;
  let runDir: string;
  const bytes = smallRecords(6);
  const images = join(work, 'images.bin');

  beforeAll(async () => {
    writeFileSync(images, bytes);
    // In this process (the plugin's class gets registered here, which the children never see).
    const run = await runCli(
      ['run', EXAMPLE, '--runs-dir', runsDir, '--backend', 'cpu', '--epochs', '1', '--set', 'data.train_size=64', '--set', 'data.test_size=32'],
      { registries: builtinRegistries },
    );
    expect(run.code, run.stderr).toBe(0);
    runId = /Run (\S+) FINISHED/.exec(run.stdout)![1]!;
    runDir = join(runsDir, 'resmlp_plugin_example', runId);
  });

  it('the run\'s model records its plugin by absolute path, and holds the plugin layers', () => {
    const modelJson = JSON.parse(readFileSync(join(runDir, 'artifacts', 'model', 'model.json'), 'utf8'));
    expect(modelJson.userDefinedMetadata.tessera.plugins).toEqual([AFFINE]);
    expect(JSON.stringify(modelJson.modelTopology).match(/"class_name":"ExampleAffine"/g)).toHaveLength(5);
  });

  it('exp predict (a fresh process) gives the in-process model\'s probabilities', async () => {
    const predicted = await runExpProcess(['predict', runId, '--runs-dir', runsDir, '--backend', 'cpu', '--input', images, '--json']);
    expect(predicted.code, predicted.stderr).toBe(0);
    // The user sees which code runs: one line per recorded module.
    expect(predicted.stderr).toContain(`loading plugin ${AFFINE} (recorded in ${join(runDir, 'artifacts', 'model', 'model.json')})\n`);
    const result = JSON.parse(predicted.stdout) as Predictions;

    // Independently, in this process: the saved model on hand-normalised pixels, softmax in float64.
    const { model, metadata } = await importModel(join(runDir, 'artifacts', 'model'));
    const pixels = normalisedRecords(bytes, 6, (metadata.data as { state: { normalize: { mean: number[]; variance: number[] } } }).state.normalize);
    const logits = await predictImages(model, { pixels, count: 6, shape: [8, 8, 3] }, []);
    model.dispose();
    expect(result.predictions).toHaveLength(6);
    result.predictions.forEach((p, i) => {
      const row = Array.from(logits.subarray(i * 4, i * 4 + 4));
      const exps = row.map((v) => Math.exp(v - Math.max(...row)));
      const want = exps.map((e) => e / exps.reduce((a, b) => a + b, 0));
      p.probabilities.forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 5));
      expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    });
  });

  it('exp evaluate (a fresh process) reproduces the run\'s own test accuracy and records it', async () => {
    const evaluated = await runExpProcess(['evaluate', runId, '--runs-dir', runsDir, '--backend', 'cpu']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(evaluated.stdout).toMatch(/^32 examples \(test\): loss [\d.]+, accuracy [\d.]+%/m);
    const report = JSON.parse(readFileSync(join(runDir, 'artifacts', 'eval', 'test', 'report.json'), 'utf8')) as { count: number; metrics: { accuracy: number; loss: number } };
    const test = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, number>).find((m) => m.test_accuracy !== undefined)!;
    expect(report.count).toBe(32);
    expect(report.metrics.accuracy).toBeCloseTo(test.test_accuracy!, 6);
    expect(report.metrics.loss).toBeCloseTo(test.test_loss!, 4);
  });

  it('exp serve (a fresh process) answers POST /predict with exp predict\'s probabilities', async () => {
    const predicted = JSON.parse((await runCli(['predict', runId, '--runs-dir', runsDir, '--backend', 'cpu', '--input', images, '--json'])).stdout) as Predictions;
    const served = await startExpServe(runId, ['--runs-dir', runsDir]);
    try {
      const response = await fetch(`${served.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [0, 1, 2].map((r) => recordImage(bytes, r)) }),
      });
      expect(response.status, served.output()).toBe(200);
      const body = (await response.json()) as Predictions;
      expect(body.predictions).toHaveLength(3);
      body.predictions.forEach((p, i) => {
        expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
        p.probabilities.forEach((v, c) => expect(Math.abs(v - predicted.predictions[i]!.probabilities[c]!)).toBeLessThan(1e-6));
      });
      expect(await served.stop()).toBe(0);
    } finally {
      served.kill();
    }
  });

  it('exp export (a fresh process) writes a directory that names the plugin; a missing or failing plugin there is exit 2 naming it', async () => {
    const exported = join(work, 'exported');
    const result = await runExpProcess(['export', runId, '--runs-dir', runsDir, '--out', exported]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(exported, 'model.json'), 'utf8')).userDefinedMetadata.tessera.plugins).toEqual([AFFINE]);
    const fromExport = await runExpProcess(['predict', exported, '--backend', 'cpu', '--input', images, '--json']);
    expect(fromExport.code, fromExport.stderr).toBe(0);

    // The directory moved to where the plugin is not: the plugin's entry in model.json, located.
    const moved = join(work, 'moved');
    cpSync(exported, moved, { recursive: true });
    const text = readFileSync(join(moved, 'model.json'), 'utf8').replace(JSON.stringify(AFFINE), JSON.stringify('/nowhere/affine.ts'));
    writeFileSync(join(moved, 'model.json'), text);
    const line = text.split('\n').findIndex((l) => l.includes('/nowhere/affine.ts')) + 1;
    const col = text.split('\n')[line - 1]!.indexOf('"/nowhere') + 1;
    for (const command of ['predict', 'evaluate', 'export', 'serve']) {
      const argv =
        command === 'predict' ? ['--input', images] : command === 'evaluate' ? ['--out', join(work, 'eval')] : command === 'export' ? ['--out', join(work, 'again')] : ['--port', '0'];
      const missing = await runCli([command, moved, ...argv], { registries: builtinRegistries });
      expect(missing.code, command).toBe(2);
      expect(missing.stderr).toContain(
        `${join(moved, 'model.json')}:${line}:${col} userDefinedMetadata.tessera.plugins[0]: plugin "/nowhere/affine.ts" not found (looked for /nowhere/affine.ts); ` +
          'the model was trained with it; if the module moved, load it from where it is now with --plugin PATH',
      );
      expect(missing.stderr).not.toMatch(/\n\s+at /);
    }
    // --plugin says where the module is now, instead of the recorded path.
    const given = await runExpProcess(['predict', moved, '--plugin', 'examples/plugins/affine.ts', '--backend', 'cpu', '--input', images, '--json']);
    expect(given.code, given.stderr).toBe(0);
    expect((JSON.parse(given.stdout) as Predictions).predictions).toEqual((JSON.parse(fromExport.stdout) as Predictions).predictions);

    // A plugin that throws while loading: exit 2, its path named, no stack trace.
    const bad = join(work, 'bad.mjs');
    writeFileSync(bad, 'throw new Error("boom at load");\n');
    writeFileSync(join(moved, 'model.json'), text.replace('"/nowhere/affine.ts"', JSON.stringify(bad)));
    const failing = await runCli(['predict', moved, '--input', images], { registries: builtinRegistries });
    expect(failing.code).toBe(2);
    expect(failing.stderr).toContain(`userDefinedMetadata.tessera.plugins[0]: plugin "${bad}" failed to load: boom at load`);
    expect(failing.stderr).not.toMatch(/\n\s+at /);
  });

  it('a model directory cannot make exp predict import a module it ships: a relative recorded plugin is refused, located, never loaded', async () => {
    const shipped = join(work, 'shipped');
    cpSync(join(runDir, 'artifacts', 'model'), shipped, { recursive: true });
    const marker = join(work, 'shipped-ran');
    writeFileSync(join(shipped, 'affine.mjs'), `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\nexport function register() {}\n`);
    const text = readFileSync(join(shipped, 'model.json'), 'utf8').replace(JSON.stringify(AFFINE), JSON.stringify('./affine.mjs'));
    writeFileSync(join(shipped, 'model.json'), text);
    const line = text.split('\n').findIndex((l) => l.includes('./affine.mjs')) + 1;
    const result = await runCli(['predict', shipped, '--input', images], { registries: builtinRegistries });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `${join(shipped, 'model.json')}:${line}:${text.split('\n')[line - 1]!.indexOf('"./') + 1} userDefinedMetadata.tessera.plugins[0]: plugin string "./affine.mjs" is not an absolute path: ` +
        "a model's recorded plugins load only from absolute paths (exp run and exp export --init record them so), never from beside the model; if you trust the module, load it with --plugin PATH",
    );
    expect(existsSync(marker)).toBe(false);
  });

  it('a truncated model.json: exit 2, located at the file, no stack trace', async () => {
    const truncated = join(work, 'truncated');
    cpSync(join(runDir, 'artifacts', 'model'), truncated, { recursive: true });
    const text = readFileSync(join(truncated, 'model.json'), 'utf8');
    writeFileSync(join(truncated, 'model.json'), text.slice(0, Math.floor(text.length / 2)));
    const result = await runCli(['predict', truncated, '--input', images], { registries: builtinRegistries });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`${join(truncated, 'model.json').replaceAll('.', '\\.')}:\\d+:\\d+ model\\.json is not valid JSON \\(.+\\): the file is corrupt or truncated; export or download the model again`));
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('a model in the MLflow download cache is downloaded data: its plugins never load, and exp export drops them (or records --plugin\'s)', async () => {
    const cache = join(work, 'cache');
    const cached = join(cache, 'mlflow-models', 'm-0123');
    cpSync(join(runDir, 'artifacts', 'model'), cached, { recursive: true });
    const env = { ...process.env, TESSERA_CACHE: cache };
    // Named by its path, its recorded plugin is still not loaded: the layer class is unknown.
    const predicted = await runExpProcess(['predict', cached, '--backend', 'cpu', '--input', images], { env });
    expect(predicted.code).toBe(2);
    expect(predicted.stderr).toContain('its layer class ExampleAffine is not registered');
    expect(predicted.stderr).not.toContain('loading plugin');

    const dropped = join(work, 'from-download');
    const exported = await runExpProcess(['export', cached, '--plugin', 'examples/plugins/affine.ts', '--out', dropped], { env });
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dropped, 'model.json'), 'utf8')).userDefinedMetadata.tessera.plugins).toEqual([AFFINE]);
    // Without --plugin (the class is registered in this process by the training): no list at all.
    vi.stubEnv('TESSERA_CACHE', cache);
    const none = join(work, 'from-download-none');
    const withoutPlugin = await runCli(['export', cached, '--out', none], { registries: builtinRegistries });
    expect(withoutPlugin.code, withoutPlugin.stderr).toBe(0);
    expect(withoutPlugin.stderr).toContain('was downloaded: the plugins it names are not recorded in');
    const tessera = JSON.parse(readFileSync(join(none, 'model.json'), 'utf8')).userDefinedMetadata.tessera;
    expect(tessera.plugins).toBeUndefined();
    expect(tessera.config.plugins).toBeUndefined();
  });
});