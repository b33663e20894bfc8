import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { effectiveConfig, loadExperiment, loadValidatedExperiment, readMetrics, readRunMeta, readSystemMetrics, runExperiment, runParams, STEP_METRICS_FILE, type ExperimentConfig, type RunSummary } from '@tessera/core';
import { builtinRegistries } from '@tessera/builtins';

/*
 * What one run of the smoke experiment records, as MLflow users expect to read it: a short name,
 * each param once, the defaults that ran, train/validation/test datasets, system metrics on
 * their own clock, and the training metrics every N steps when asked.
 */
const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-records-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let summary: RunSummary;
beforeAll(async () => {
  summary = await runExperiment(join(ROOT, 'experiments/smoke.yaml'), {
    registries: builtinRegistries(),
    epochs: 2,
    backend: 'cpu',
    overrides: ['tracking.log_every_n_steps=4'],
    runsDir: tmp,
    createTracker: () => undefined,
    progress: 'none',
    output: { write: () => true },
  });
}, 120_000);

const json = (file: string) => JSON.parse(readFileSync(join(summary.runDir, file), 'utf8'));

describe('the record of a run', () => {
  it('is named <experiment>-<short id>', async () => {
    const meta = await readRunMeta(summary.runDir);
    expect(meta.runName).toBe(`smoke-${summary.runId.split('-').at(-1)}`);
    expect(json('tags.json')['mlflow.runName']).toBe(meta.runName);
  });

  it('has each param once, a named layer keyed by its name, and the defaults that ran', () => {
    const params = json('params.json') as Record<string, unknown>;
    for (const alias of ['epochs', 'batch_size', 'optimizer_name', 'optimizer_learning_rate', 'optimizer_weight_decay']) expect(params).not.toHaveProperty(alias);
    expect(params).toMatchObject({
      'train.epochs': 2,
      'train.optimizer.learning_rate': 0.01,
      // smoke.yaml's last layer is `name: logits`; the unnamed ones keep their index.
      'model.layers.logits.units': 4,
      'model.layers.1.units': 32,
      // Not in smoke.yaml: the schema's defaults, i.e. what ran.
      'train.optimizer.beta_1': 0.9,
      'train.loss.label_smoothing': 0,
      backend: 'cpu',
    });
    expect(params).not.toHaveProperty('model.layers.4.units');
    expect(params).not.toHaveProperty('model.layers.logits.name');
  });

  it('logs the train, validation and test datasets, each with its own digest', () => {
    const inputs = json('inputs.json') as { name: string; context: string; digest: string; profile: { num_rows: number } }[];
    expect(inputs.map((i) => [i.name, i.context, i.profile.num_rows])).toEqual([
      ['synthetic', 'train', 512],
      ['synthetic', 'validation', 128],
      ['synthetic', 'test', 128],
    ]);
    expect(new Set(inputs.map((i) => i.digest)).size).toBe(3);
  });

  it('keeps metrics.jsonl one line per epoch; system metrics (MLflow\u2019s names) and step metrics have their own files', async () => {
    expect((await readMetrics(summary.runDir)).map((r) => r.step)).toEqual([1, 2]);
    const system = await readSystemMetrics(summary.runDir);
    expect(system.length).toBeGreaterThan(0);
    expect(system[0]!.step).toBe(0);
    expect(Object.keys(system[0]!)).toEqual(expect.arrayContaining(['system/cpu_utilization_percentage', 'system/system_memory_usage_megabytes']));
    // 512 training examples / batch 32 = 16 steps per epoch; every 4th of the 32 steps.
    const steps = await readMetrics(summary.runDir, STEP_METRICS_FILE);
    expect(steps.map((r) => r.step)).toEqual([4, 8, 12, 16, 20, 24, 28, 32]);
    expect(Object.keys(steps[0]!).filter((k) => k.startsWith('step/')).sort()).toEqual(['step/accuracy', 'step/loss', 'step/top5_accuracy']);
    // The last step's running means are the epoch's training metrics.
    const epoch2 = (await readMetrics(summary.runDir))[1]!;
    expect(steps.at(-1)!['step/loss']).toBeCloseTo(epoch2.loss as number, 6);
  });
});

describe('docs/tracking.md\u2019s params per reference run', () => {
  it('are what a run of each committed experiment records, as written and with the defaults that ran', () => {
    const registries = builtinRegistries();
    // run.ts adds `backend` (the one the run got) and `seed` (also a config key) to the config's params.
    const count = (config: ExperimentConfig) => new Set([...Object.keys(runParams(config, { countParams: () => 0 })), 'seed', 'backend']).size;
    const rows = readFileSync(join(ROOT, 'docs/tracking.md'), 'utf8')
      .split('\n')
      .filter((line) => /^\| experiments\/\w+\.yaml \|/.test(line))
      .map((line) => line.split('|').map((cell) => cell.trim()).slice(1, -1));
    expect(rows.map((row) => row[0])).toEqual(['experiments/smoke.yaml', 'experiments/mixer.yaml', 'experiments/fnet.yaml', 'experiments/gmlp.yaml']);
    for (const [file, , , written, withDefaults, added] of rows) {
      const path = join(ROOT, file!);
      const asWritten = count(loadExperiment(path).config as unknown as ExperimentConfig);
      const ran = count(effectiveConfig(loadValidatedExperiment(path, registries).config, registries));
      expect([file, Number(written), Number(withDefaults), Number(added)]).toEqual([file, asWritten, ran, ran - asWritten]);
    }
  });
});
