// Runs recorded in a REAL mlflow server (startMlflowServer: sqlite store, proxied artifacts, temp
// folder): the smoke experiment end to end, a server killed mid-run and restarted, exp sync and
// exp runs. Needs `bash scripts/setup-mlflow.sh`; skipped locally without it, fails under CI=true.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient, type Run } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import {
  MlflowTracker,
  createMlflowTracker,
  readMetrics,
  readSystemMetrics,
  readRunMeta,
  readSyncStates,
  runExperiment,
} from '@tessera/core';
import { builtinRegistries } from '@tessera/builtins';
import { main } from '../main.ts';

const mlflow = locateMlflowForTests();
const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const SMOKE = join(ROOT, 'experiments', 'smoke.yaml');
const registries = builtinRegistries();
const silent = { write: () => true };
// Tiny: two epochs of four steps on the smoke model.
const TINY = ['train.epochs=2', 'train.steps_per_epoch=4'];
const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Uint8Array): [number, number] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

async function runByLocalId(client: MlflowClient, experimentName: string, localRunId: string): Promise<Run[]> {
  const experiment = await client.getExperimentByName(experimentName);
  return client.searchAllRuns({ experimentIds: [experiment!.experimentId], filter: `tags.\`tessera.run_id\` = '${localRunId}'` });
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } });
  return { code, out: out.join(''), err: err.join('') };
}

/** Sets environment variables for the duration of `body`. */
async function withEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((key) => [key, process.env[key]]));
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

/** A second `mlflow server` on the same port, database and artifacts as a stopped one. */
async function restartServer(binary: string, stopped: MlflowServerHandle): Promise<{ stop(): void }> {
  const child: ChildProcess = spawn(
    binary,
    [
      'server', '--host', '127.0.0.1', '--port', String(stopped.port), '--workers', '1',
      '--backend-store-uri', `sqlite:///${join(stopped.dir, 'mlflow.db')}`,
      '--serve-artifacts', '--artifacts-destination', stopped.artifactsDir,
    ],
    { cwd: stopped.dir, env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false' }, detached: true, stdio: 'ignore' },
  );
  const stop = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', stop);
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
    const ok = await fetch(`${stopped.uri}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
    if (ok) return { stop };
  }
  stop();
  throw new Error('the restarted mlflow server did not answer');
}

describe.skipIf(!mlflow.binary)('runs in a real mlflow server', () => {
  let server: MlflowServerHandle;
  let client: MlflowClient;
  let runsDir: string;
  let restarted: { stop(): void } | undefined;

  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary, keepFiles: true });
    client = new MlflowClient({ trackingUri: server.uri, retry: { maxRetries: 1 } });
    runsDir = mkdtempSync(join(tmpdir(), 'tessera-sync-test-'));
  });

  afterAll(async () => {
    restarted?.stop();
    await server?.stop();
    if (server) rmSync(server.dir, { recursive: true, force: true });
    if (runsDir) rmSync(runsDir, { recursive: true, force: true });
  });

  it('records the smoke run: params, per-epoch history, system metrics, tags, dataset, artifacts, status; never the token', async () => {
    const experimentName = unique('smoke');
    const token = `tok-${randomBytes(12).toString('hex')}`;
    const summary = await withEnv({ MLFLOW_TRACKING_TOKEN: token }, () =>
      runExperiment(SMOKE, {
        registries,
        runsDir,
        output: silent,
        overrides: [...TINY, `tracking.uri=${server.uri}`, `tracking.experiment=${experimentName}`, 'tracking.tags={team: vision}'],
      }),
    );
    expect(summary.status).toBe('FINISHED');
    const [run] = await runByLocalId(client, experimentName, summary.runId);
    expect(run).toBeDefined();
    const runId = run!.info.runId;
    const meta = await readRunMeta(summary.runDir);
    expect(meta.runName).toBe(`smoke-${summary.runId.slice(-6)}`);
    expect(run!.info).toMatchObject({ status: 'FINISHED', runName: meta.runName, startTime: Date.parse(meta.startTime), endTime: Date.parse(meta.endTime!) });
    expect((await readSyncStates(summary.runDir))[server.uri]).toMatchObject({ runId, experimentName, pending: false, outbox: [] });

    // Params: the flattened config as it ran (defaults filled in), each value once, identical in both stores.
    const params = run!.data.params;
    const modelParams = JSON.parse(readFileSync(join(summary.runDir, 'artifacts', 'model', 'model.json'), 'utf8')).weightsManifest[0].weights.reduce(
      (sum: number, w: { shape: number[] }) => sum + w.shape.reduce((a, b) => a * b, 1),
      0,
    );
    expect(params).toMatchObject({
      'train.epochs': '2',
      'train.optimizer.type': 'adamw',
      'data.image_shape': '[8,8,3]',
      'model.layers.1.units': '32',
      'vars.num_classes': '4',
      'train.optimizer.learning_rate': '0.01',
      'train.optimizer.beta_1': '0.9',
      model_params: String(modelParams),
      seed: '1',
      backend: summary.backend,
      backend_request: 'auto',
    });
    for (const alias of ['epochs', 'batch_size', 'optimizer_name', 'optimizer_learning_rate']) expect(params).not.toHaveProperty(alias);
    const localParams = JSON.parse(readFileSync(join(summary.runDir, 'params.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.fromEntries(Object.entries(localParams).map(([k, v]) => [k, String(v)]))).toEqual(params);

    // Metrics: the full history per epoch (step = epoch), test metrics at the last step, system metrics.
    const local = await readMetrics(summary.runDir);
    const loss = await client.getMetricHistory(runId, 'loss');
    expect(loss.map((m) => [m.step, m.value])).toEqual(local.map((r) => [r.step, r.loss]));
    expect(loss.map((m) => m.step)).toEqual([1, 2]);
    for (const key of ['val_loss', 'val_accuracy', 'top5_accuracy', 'images_per_second', 'epoch_time']) {
      expect((await client.getMetricHistory(runId, key)).map((m) => m.step), key).toEqual([1, 2]);
    }
    // System metrics under MLflow's names, on their own clock: steps 0, 1, ... (a short run: the last sample at least).
    const samples = (await readSystemMetrics(summary.runDir)).map((r) => r.step);
    expect(samples.length).toBeGreaterThan(0);
    for (const key of ['system/cpu_utilization_percentage', 'system/system_memory_usage_megabytes', 'system/system_memory_usage_percentage']) {
      expect((await client.getMetricHistory(runId, key)).map((m) => m.step), key).toEqual(samples);
    }
    expect((await client.getMetricHistory(runId, 'system/system_memory_usage_megabytes'))[0]!.value).toBeGreaterThan(10);
    expect((await client.getMetricHistory(runId, 'test_accuracy')).map((m) => [m.step, m.value])).toEqual([[2, summary.test!.test_accuracy]]);

    // Tags.
    const tags = run!.data.tags;
    expect(tags).toMatchObject({
      'mlflow.runName': meta.runName,
      'mlflow.source.name': SMOKE,
      'mlflow.source.type': 'LOCAL',
      'mlflow.user': expect.any(String),
      'tessera.backend': summary.backend,
      'tessera.version': '0.1.0',
      'tessera.run_id': summary.runId,
      'tessera.best_epoch': expect.stringMatching(/^[12]$/),
      team: 'vision',
    });
    expect(tags['mlflow.source.git.commit']).toMatch(/^[0-9a-f]{40}$/);
    expect(tags['mlflow.note.content']).toMatch(/^Smoke test: a tiny patch MLP on generated images/);
    expect(tags['mlflow.note.content']).not.toContain('yaml-language-server');

    // The datasets as autolog logs them: train, validation and test, each with its own digest.
    const inputs = JSON.parse(readFileSync(join(summary.runDir, 'inputs.json'), 'utf8')) as { digest: string; context: string }[];
    expect(inputs.map((i) => i.context)).toEqual(['train', 'validation', 'test']);
    expect(new Set(inputs.map((i) => i.digest)).size).toBe(3);
    expect(run!.inputs.datasetInputs).toEqual(
      inputs.map((input) =>
        expect.objectContaining({ dataset: expect.objectContaining({ name: 'synthetic', digest: input.digest }), tags: { 'mlflow.data.context': input.context } }),
      ),
    );

    // Artifacts: the same files, the same bytes; the plots are real PNGs.
    const localFiles = filesUnder(join(summary.runDir, 'artifacts')).map((f) => f.slice(join(summary.runDir, 'artifacts').length + 1)).sort();
    for (const path of ['config.yaml', 'overrides.yaml', 'model_summary.txt', 'plots/loss.png', 'plots/accuracy.png', 'model/model.json', 'model/weights.bin', 'best_model/model.json', 'best_model/weights.bin']) {
      expect(localFiles).toContain(path);
    }
    for (const path of localFiles) {
      const remote = await client.downloadArtifact(runId, path);
      expect(Buffer.from(remote).equals(readFileSync(join(summary.runDir, 'artifacts', path))), path).toBe(true);
    }
    const png = await client.downloadArtifact(runId, 'plots/loss.png');
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(new TextDecoder().decode(png.subarray(12, 16))).toBe('IHDR');
    expect(pngSize(png)[0]).toBe(800);
    expect(pngSize(png)[1]).toBeGreaterThan(300);
    expect(new TextDecoder().decode(await client.downloadArtifact(runId, 'overrides.yaml'))).toContain('train.epochs=2');
    expect(new TextDecoder().decode(await client.downloadArtifact(runId, 'model_summary.txt'))).toMatch(/Total params: [\d,]+/);

    // The token is nowhere: not in the local store's files, not in MLflow's params or tags.
    for (const file of filesUnder(summary.runDir)) expect(readFileSync(file).includes(token), file).toBe(false);
    expect(JSON.stringify(run!.data)).not.toContain(token);

    // exp sync of a run that is complete changes nothing and creates no second run.
    const again = await cli(['sync', summary.runId, '--uri', server.uri, '--runs-dir', runsDir]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toBe(`${summary.runId} -> MLflow run ${runId}: already up to date\n`);
    expect(await runByLocalId(client, experimentName, summary.runId)).toHaveLength(1);
    expect(await cli(['sync', '--uri', server.uri, '--runs-dir', runsDir, '--experiment', 'smoke'])).toMatchObject({ code: 0, out: expect.stringMatching(/^Nothing to sync/) });
  });

  it('a parent run with children: MLflow shows mlflow.parentRunId on each child', async () => {
    const experimentName = unique('sweep');
    const { LocalRunStore, combineTrackers } = await import('@tessera/core');
    const start = async (parentRunId?: string) => {
      const local = new LocalRunStore(runsDir);
      const mlflowTracker = new MlflowTracker({ client, experiment: experimentName, local });
      const tracker = combineTrackers(local, mlflowTracker);
      const info = await tracker.startRun({ experiment: 'sweep', ...(parentRunId ? { parentRunId } : {}) });
      return { info, tracker, mlflowTracker };
    };
    const parent = await start();
    const children = [await start(parent.info.runId), await start(parent.info.runId)];
    for (const child of children) {
      await child.tracker.logMetrics({ loss: 1 }, 1);
      await child.tracker.endRun('FINISHED');
      const run = await client.getRun(child.mlflowTracker.mlflowRunId!);
      expect(run.data.tags['mlflow.parentRunId']).toBe(parent.mlflowTracker.mlflowRunId);
      expect((await readRunMeta(child.info.dir!)).parentRunId).toBe(parent.info.runId);
    }
    await parent.tracker.endRun('FINISHED');
    const experiment = await client.getExperimentByName(experimentName);
    const found = await client.searchAllRuns({ experimentIds: [experiment!.experimentId], filter: `tags.\`mlflow.parentRunId\` = '${parent.mlflowTracker.mlflowRunId}'` });
    expect(found.map((r) => r.info.runId).sort()).toEqual(children.map((c) => c.mlflowTracker.mlflowRunId).sort());
  });

  it('a stopped run resumed: the same MLflow run goes KILLED -> RUNNING -> FINISHED, each epoch once', async () => {
    const experimentName = unique('resume');
    const stop = new AbortController();
    const tracking = [`tracking.uri=${server.uri}`, `tracking.experiment=${experimentName}`];
    const output = { write: (text: string) => (text.startsWith('Epoch 2/') && setTimeout(() => stop.abort(), 0), true) };
    const stopped = await runExperiment(SMOKE, { registries, runsDir, output, progress: 'plain', signal: stop.signal, overrides: [...TINY, 'train.epochs=3', ...tracking] });
    expect(stopped.status).toBe('KILLED');
    const [first] = await runByLocalId(client, experimentName, stopped.runId);
    expect(first!.info.status).toBe('KILLED');

    const resumed = await runExperiment(undefined, { registries, runsDir, resume: stopped.runId, output: silent });
    expect(resumed.status).toBe('FINISHED');
    const runs = await runByLocalId(client, experimentName, stopped.runId);
    expect(runs.map((r) => [r.info.runId, r.info.status])).toEqual([[first!.info.runId, 'FINISHED']]);
    expect((await client.getMetricHistory(first!.info.runId, 'loss')).map((m) => m.step).sort((a, b) => a - b)).toEqual([1, 2, 3]);
    expect((await readSyncStates(resumed.runDir))[server.uri]).toMatchObject({ runId: first!.info.runId, pending: false });
  });

  it('exp sync sends a run recorded offline, >1000 metric values in chunks, and `exp runs` shows its state', async () => {
    const { LocalRunStore } = await import('@tessera/core');
    const local = new LocalRunStore(runsDir);
    const info = await local.startRun({ experiment: 'offline', runName: 'long' });
    await local.logParams({ lr: 0.1 });
    for (let step = 1; step <= 1100; step++) await local.logMetrics({ loss: 1 / step }, step);
    await local.endRun('FINISHED');
    expect((await cli(['runs', '--runs-dir', runsDir, '--experiment', 'offline'])).out).toMatch(
      new RegExp(`^RUN +NAME +EXPERIMENT +STATUS +EPOCHS +LOSS .*\\n${info.runId} +long +offline +FINISHED +1100 +0\\.0009 .* -\\n$`),
    );

    const experimentName = unique('offline');
    const synced = await cli(['sync', '--uri', server.uri, '--runs-dir', runsDir, '--experiment', 'offline', '--mlflow-experiment', experimentName]);
    expect(synced.code, synced.err).toBe(0);
    expect(synced.out).toMatch(new RegExp(`^${info.runId} -> MLflow run [0-9a-f]{32} \\(created\\): sent 1 params, 1100 metric values, status\\n$`));
    const [run] = await runByLocalId(client, experimentName, info.runId);
    const history = await client.getMetricHistory(run!.info.runId, 'loss');
    expect(history).toHaveLength(1100);
    expect(history.find((m) => m.step === 1000)?.value).toBeCloseTo(0.001, 9);
    expect(run!.info.status).toBe('FINISHED');
    expect((await cli(['runs', '--runs-dir', runsDir, '--experiment', 'offline'])).out).toMatch(/FINISHED +1100 +0\.0009 .* synced\n$/);
    expect(JSON.parse((await cli(['runs', '--runs-dir', runsDir, '--experiment', 'offline', '--json'])).out)).toMatchObject({
      runId: info.runId,
      epochs: 1100,
      mlflow: { [server.uri]: 'synced' },
    });
  });

  it('a running run synced before its first epoch sends its system samples with that epoch, after it: MLflow\u2019s first metric is the epoch\u2019s first', async () => {
    const { LocalRunStore, syncRun } = await import('@tessera/core');
    const local = new LocalRunStore(join(runsDir, 'first-metric'));
    const info = await local.startRun({ experiment: 'first', runName: 'trial', tags: { 'sweep.metric': 'val_loss' } });
    await local.logMetrics({ 'system/cpu_utilization_percentage': 50, 'system/system_memory_usage_megabytes': 900 }, 0);
    const experiment = unique('first');
    const before = await syncRun(info.dir!, { client, experiment });
    expect((await client.getRun(before.mlflowRunId)).data.metrics).toEqual([]);
    // The epoch's record as a sweep trial logs it: the objective first.
    await local.logMetrics({ val_loss: 2, loss: 2.5 }, 1);
    await syncRun(info.dir!, { client, experiment });
    const run = await client.getRun(before.mlflowRunId);
    expect(run.data.metrics.map((m) => m.key)).toEqual(['val_loss', 'loss', 'system/cpu_utilization_percentage', 'system/system_memory_usage_megabytes']);
    // A run that ended before any epoch sends its samples all the same.
    const other = new LocalRunStore(join(runsDir, 'first-metric'));
    const early = await other.startRun({ experiment: 'first', runName: 'failed-early' });
    await other.logMetrics({ 'system/cpu_utilization_percentage': 40 }, 0);
    await other.endRun('FAILED', 'boom');
    const ended = await syncRun(early.dir!, { client, experiment });
    expect((await client.getRun(ended.mlflowRunId)).data.metrics.map((m) => m.key)).toEqual(['system/cpu_utilization_percentage']);
  });

  it('exp sync without RUN finds a sweep recorded offline (its run, and its trials under runs/sweeps/) and nests the trials; exp runs lists them all', async () => {
    const { LocalRunStore } = await import('@tessera/core');
    const root = join(runsDir, 'sweep-offline');
    // The layout exp sweep leaves: the sweep's run beside the experiment's runs, each trial's
    // attempt a run store of its own under sweeps/<sweep>/trials/<trial>/attempt-<n>/.
    const sweepStore = new LocalRunStore(root);
    const sweep = await sweepStore.startRun({ experiment: 'fake', runName: 'grid', tags: { 'tessera.sweep': 'grid' } });
    await sweepStore.endRun('FINISHED');
    const trialIds: string[] = [];
    for (const [trial, loss] of [['trial-000', 0.5], ['trial-001', 0.25]] as const) {
      const store = new LocalRunStore(join(root, 'sweeps/grid/trials', trial, 'attempt-1'));
      const info = await store.startRun({ experiment: 'fake', runName: trial, parentRunId: sweep.runId, tags: { 'sweep.trial': trial } });
      await store.logMetrics({ val_loss: loss }, 1);
      await store.endRun('FINISHED');
      trialIds.push(info.runId);
    }
    const listed = await cli(['runs', '--runs-dir', root]);
    for (const id of [sweep.runId, ...trialIds]) expect(listed.out).toMatch(new RegExp(`^(?:\\S+ )?${id} +\\S+ +fake +FINISHED`, 'm'));

    const experimentName = unique('sweep-offline');
    const synced = await cli(['sync', '--uri', server.uri, '--runs-dir', root, '--mlflow-experiment', experimentName]);
    expect(synced.code, synced.err).toBe(0);
    // The sweep's run first, so the trials find it in MLflow.
    expect(synced.out.trim().split('\n').map((line) => line.split(' ')[0])).toEqual([sweep.runId, ...[...trialIds].sort()]);
    const [parent] = await runByLocalId(client, experimentName, sweep.runId);
    for (const id of trialIds) {
      const [child] = await runByLocalId(client, experimentName, id);
      expect(child!.data.tags['mlflow.parentRunId']).toBe(parent!.info.runId);
      expect(child!.data.metrics.find((m) => m.key === 'val_loss')).toBeDefined();
    }
    const again = await cli(['sync', '--uri', server.uri, '--runs-dir', root]);
    expect(again.out).toBe(`Nothing to sync: ${server.uri} has every local run under ${root}\n`);
    // A trial's run by its id alone.
    const one = await cli(['sync', trialIds[1]!, '--uri', server.uri, '--runs-dir', root]);
    expect(one.code, one.err).toBe(0);
    expect(one.out).toMatch(new RegExp(`^${trialIds[1]} -> MLflow run [0-9a-f]{32}: already up to date\n$`));
  });

  it('a server killed mid-run and restarted loses nothing: one warning, the run goes on, exp sync completes MLflow exactly once', async () => {
    // Last: it kills the shared server (the restarted one serves until afterAll).
    const experimentName = unique('outage');
    const messages: string[] = [];
    // Kill the server once the first epoch's metrics reached it.
    const createTracker: typeof createMlflowTracker = (tracking, experiment, context) => {
      const tracker = createMlflowTracker(tracking, experiment, context)!;
      const logMetrics = tracker.logMetrics.bind(tracker);
      tracker.logMetrics = async (metrics, step) => {
        await logMetrics(metrics, step);
        // Calls go out in the background: wait for step 1 to be delivered before the outage.
        if (step === 1) {
          await tracker.flush();
          await server.stop();
        }
      };
      return tracker;
    };
    const summary = await withEnv({ MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' }, () =>
      runExperiment(SMOKE, {
        registries,
        runsDir,
        createTracker,
        output: { write: (text: string) => messages.push(text) },
        progress: 'plain',
        overrides: [...TINY, 'train.epochs=3', `tracking.uri=${server.uri}`, `tracking.experiment=${experimentName}`],
      }),
    );
    expect(summary.status).toBe('FINISHED');
    const output = messages.join('');
    expect(output.match(/warning: MLflow/g)).toHaveLength(1);
    const state0 = (await readSyncStates(summary.runDir))[server.uri]!;
    expect(output).toContain(`MLflow run: ${server.uri}/#/experiments/${state0.experimentId}/runs/${state0.runId}\n`);
    expect(output).toContain(`exp sync ${summary.runId}`);
    const state = (await readSyncStates(summary.runDir))[server.uri]!;
    expect(state.pending).toBe(true);
    expect(state.outbox.map((entry) => entry.call)).toEqual(expect.arrayContaining(['logMetrics step 3', 'logArtifact plots/loss.png']));
    expect((await cli(['runs', '--runs-dir', runsDir, '--experiment', 'smoke'])).out).toMatch(/FINISHED +3 .* pending \(exp sync\)\n$/);

    restarted = await restartServer(mlflow.binary!, server);
    const before = await client.getRun(state.runId!);
    expect(before.info.status).toBe('RUNNING');
    expect((await client.getMetricHistory(state.runId!, 'loss')).map((m) => m.step)).toEqual([1]);

    const synced = await cli(['sync', '--uri', server.uri, '--runs-dir', runsDir, '--experiment', 'smoke']);
    expect(synced.code, synced.err).toBe(0);
    expect(synced.out).toMatch(new RegExp(`^${summary.runId} -> MLflow run ${state.runId}: sent .*metric values.*artifacts, [12] LoggedModels?, status\\n$`));

    const [run, ...duplicates] = await runByLocalId(client, experimentName, summary.runId);
    expect(duplicates).toEqual([]);
    expect(run!.info.runId).toBe(state.runId);
    const meta = await readRunMeta(summary.runDir);
    expect(run!.info).toMatchObject({ status: 'FINISHED', endTime: Date.parse(meta.endTime!) });
    const local = await readMetrics(summary.runDir);
    for (const key of ['loss', 'val_accuracy']) {
      const history = await client.getMetricHistory(run!.info.runId, key);
      expect(history.map((m) => [m.step, m.value]).sort((a, b) => a[0]! - b[0]!), key).toEqual(local.map((r) => [r.step, r[key]]));
    }
    expect((await client.getMetricHistory(run!.info.runId, 'test_accuracy')).map((m) => m.value)).toEqual([summary.test!.test_accuracy]);
    const localParams = JSON.parse(readFileSync(join(summary.runDir, 'params.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(run!.data.params).sort()).toEqual(Object.keys(localParams).sort());
    for (const path of ['plots/loss.png', 'plots/accuracy.png', 'model/weights.bin', 'config.yaml']) {
      const remote = await client.downloadArtifact(run!.info.runId, path);
      expect(remote.byteLength, path).toBe(statSync(join(summary.runDir, 'artifacts', path)).size);
    }
    expect((await readSyncStates(summary.runDir))[server.uri]).toMatchObject({ pending: false, outbox: [] });

    // Twice is once.
    const again = await cli(['sync', summary.runId, '--uri', server.uri, '--runs-dir', runsDir]);
    expect(again.out).toBe(`${summary.runId} -> MLflow run ${state.runId}: already up to date\n`);
    expect(await runByLocalId(client, experimentName, summary.runId)).toHaveLength(1);
    expect((await client.getMetricHistory(run!.info.runId, 'loss')).map((m) => m.step).sort((a, b) => a - b)).toEqual([1, 2, 3]);
  });
});
