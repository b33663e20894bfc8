// MLflow 3 LoggedModels and the Model Registry through the client, against a REAL `mlflow server`
// (sqlite store, --serve-artifacts, temp folder). Needs `bash scripts/setup-mlflow.sh`; skipped
// with a message locally without it; under CI=true a missing mlflow fails.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from './client.ts';
import { locateMlflowForTests, mlflowErrorFrom, startMlflowServer, type MlflowServerHandle } from './testing.ts';

const mlflow = locateMlflowForTests();
const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

let server: MlflowServerHandle;
let client: MlflowClient;
let dir: string;

beforeAll(async () => {
  if (!mlflow.binary) return;
  server = await startMlflowServer();
  client = new MlflowClient({ trackingUri: server.uri });
  dir = await mkdtemp(join(tmpdir(), 'mlflow-models-'));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!mlflow.binary)('logged models and the registry (real MLflow)', () => {
  it('creates a LoggedModel linked to a run, uploads, lists and downloads its files, links metrics, finalizes it', async () => {
    const experimentId = await client.createExperiment(unique('models'));
    const run = await client.createRun({ experimentId });
    const runId = run.info.runId;
    const pending = await client.createLoggedModel({ experimentId, name: 'model', modelType: 'custom', sourceRunId: runId, params: { layers: 3 }, tags: { owner: 'test' } });
    expect(pending).toMatchObject({ status: 'LOGGED_MODEL_PENDING', name: 'model', modelType: 'custom', sourceRunId: runId, params: { layers: '3' }, tags: { owner: 'test' } });
    expect(pending.modelId).toMatch(/^m-/);

    await client.uploadLoggedModelArtifact(pending.modelId, 'weights.bin', Uint8Array.of(1, 2, 3));
    await client.uploadLoggedModelArtifact(pending.modelId, 'sub/MLmodel', 'flavors: {}\n');
    expect((await client.listLoggedModelArtifacts(pending.modelId)).map((f) => [f.path, f.isDir]).sort()).toEqual([
      ['sub', true],
      ['weights.bin', false],
    ]);
    await client.downloadLoggedModelFile(pending.modelId, 'weights.bin', join(dir, 'w.bin'));
    expect([...(await readFile(join(dir, 'w.bin')))]).toEqual([1, 2, 3]);

    // A metric logged with the model id shows on the model; the same key/step/timestamp/value adds no second history row.
    const timestamp = Date.now();
    await client.logBatch(runId, { metrics: [{ key: 'accuracy', value: 0.5, step: 2, timestamp }] });
    await client.logBatch(runId, { metrics: [{ key: 'accuracy', value: 0.5, step: 2, timestamp, modelId: pending.modelId }] });
    expect((await client.getMetricHistory(runId, 'accuracy')).map((m) => [m.step, m.value])).toEqual([[2, 0.5]]);
    await client.logOutputs(runId, [{ modelId: pending.modelId, step: 2 }]);

    const ready = await client.finalizeLoggedModel(pending.modelId);
    expect(ready.status).toBe('LOGGED_MODEL_READY');
    const got = await client.getLoggedModel(pending.modelId);
    expect(got.metrics.map((m) => [m.key, m.value, m.step])).toEqual([['accuracy', 0.5, 2]]);
    const found = await client.searchLoggedModels({ experimentIds: [experimentId] });
    expect(found.map((m) => m.modelId)).toEqual([pending.modelId]);
  }, 60_000);

  it('registers versions from a LoggedModel, sets and resolves an alias; getOrCreate is idempotent', async () => {
    const experimentId = await client.createExperiment(unique('registry'));
    const run = await client.createRun({ experimentId });
    const model = await client.createLoggedModel({ experimentId, name: 'model', sourceRunId: run.info.runId });
    await client.finalizeLoggedModel(model.modelId);
    const name = unique('classifier');
    expect(await client.getRegisteredModel(name)).toBeUndefined();
    await client.getOrCreateRegisteredModel(name, { description: 'a test model' });
    expect((await client.getOrCreateRegisteredModel(name)).description).toBe('a test model');

    const v1 = await client.createModelVersion({ name, source: `models:/${model.modelId}`, runId: run.info.runId, modelId: model.modelId, tags: { 'metric.accuracy': '0.5' } });
    const v2 = await client.createModelVersion({ name, source: `models:/${model.modelId}`, runId: run.info.runId, modelId: model.modelId });
    expect([v1.version, v2.version]).toEqual(['1', '2']);
    expect(v1).toMatchObject({ source: `models:/${model.modelId}`, runId: run.info.runId, tags: { 'metric.accuracy': '0.5' } });
    await client.setRegisteredModelAlias(name, 'champion', '1');
    expect((await client.getModelVersionByAlias(name, 'champion')).version).toBe('1');
    expect((await client.getRegisteredModel(name))!.aliases).toEqual({ champion: '1' });
    expect((await client.getModelVersion(name, '2')).aliases).toEqual([]);
    const missing = await mlflowErrorFrom(client.getModelVersionByAlias(name, 'nope'));
    expect(missing.errorCode).toMatch(/RESOURCE_DOES_NOT_EXIST|INVALID_PARAMETER_VALUE/);
  }, 60_000);
});
