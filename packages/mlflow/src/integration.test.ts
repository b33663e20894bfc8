// The client against a REAL `mlflow server` (sqlite store, --serve-artifacts, temp folder).
// Needs mlflow: `bash scripts/setup-mlflow.sh`. Skipped with a message locally without it;
// under CI=true a missing mlflow fails (locateMlflowForTests throws).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREATE_REQUEST_ID_TAG, MlflowClient } from './client.ts';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle, mlflowErrorFrom } from './testing.ts';

const mlflow = locateMlflowForTests();
const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** Writes `size` random bytes in 1 MiB pieces and returns their sha256. */
async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    for (let written = 0; written < size; written += 1 << 20) {
      const piece = randomBytes(Math.min(1 << 20, size - written));
      hash.update(piece);
      await handle.write(piece);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The most that ArrayBuffer + external memory (where file chunks live) rose above its level before
 * `work`. Collecting garbage before every sample counts what is held, not chunks already let go.
 */
async function peakBufferGrowth(work: () => Promise<void>): Promise<number> {
  // V8 frees collected ArrayBuffers on a background thread and only then lowers the count, which
  // lags by megabytes while a download allocates chunks at network speed: sweep synchronously.
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const held = () => {
    gc();
    const usage = process.memoryUsage();
    return usage.arrayBuffers + usage.external;
  };
  const before = held();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, held());
  }, 20);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, held()) - before;
}

describe.skipIf(!mlflow.binary)('against a real mlflow server', () => {
  let server: MlflowServerHandle;
  let client: MlflowClient;
  let experimentId: string;
  let scratch: string;

  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary });
    client = new MlflowClient({ trackingUri: server.uri, retry: { maxRetries: 2 } });
    experimentId = await client.getOrCreateExperiment(unique('tessera-it'));
    scratch = await mkdtemp(join(tmpdir(), 'mlflow-it-'));
  });

  afterAll(async () => {
    await server?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('creates and finds experiments', async () => {
    const name = unique('exp');
    const id = await client.createExperiment(name, { tags: { team: 'vision' } });
    expect(await client.getOrCreateExperiment(name)).toBe(id);
    const experiment = await client.getExperimentByName(name);
    expect(experiment).toMatchObject({ experimentId: id, name, lifecycleStage: 'active', tags: { team: 'vision' } });
    expect(experiment?.artifactLocation).toBe(`mlflow-artifacts:/${id}`);
    const found = await client.searchExperiments({ filter: `name = '${name}'` });
    expect(found.items.map((e) => e.experimentId)).toEqual([id]);
    expect((await mlflowErrorFrom(client.createExperiment(name))).errorCode).toBe('RESOURCE_ALREADY_EXISTS');
  });

  it('runs a run: params, tags, >1000 metrics in chunks, NaN/Inf round trip, RUNNING -> FINISHED', async () => {
    const run = await client.createRun({ experimentId, runName: 'chunky', startTime: 1_700_000_000_000, tags: { model: 'm1' } });
    const runId = run.info.runId;
    expect(run.info).toMatchObject({ status: 'RUNNING', runName: 'chunky', startTime: 1_700_000_000_000, experimentId });
    expect(run.data.tags[CREATE_REQUEST_ID_TAG]).toMatch(/^[0-9a-f-]{36}$/);

    const special = [NaN, Infinity, -Infinity];
    const values = Array.from({ length: 1234 }, (_, i) => (i < 3 ? special[i]! : Math.sin(i) * 10 ** (i % 7)));
    const requests = await client.logBatch(runId, {
      metrics: values.map((value, step) => ({ key: 'train/loss', value, step, timestamp: 1_700_000_000_000 + step })),
      params: { lr: 0.001, depth: 8, optimizer: 'adamw' },
      tags: { stage: 'smoke' },
    });
    expect(requests).toBe(2);
    await client.logMetric(runId, 'val acc:top-1', 0.125, { step: 7, timestamp: 42 });
    await client.logParam(runId, 'seed', 42);
    await client.setTag(runId, 'note', 'ünïcode ✓');

    const history = await client.getMetricHistory(runId, 'train/loss');
    expect(history).toHaveLength(1234);
    const byStep = [...history].sort((a, b) => a.step - b.step);
    expect(byStep.map((m) => m.value)).toEqual(values);
    expect(byStep.map((m) => m.timestamp)).toEqual(values.map((_, step) => 1_700_000_000_000 + step));
    // The same history, fetched in pages of 500.
    expect((await client.getMetricHistory(runId, 'train/loss', { pageSize: 500 })).map((m) => m.step).sort((a, b) => a - b)).toEqual(
      byStep.map((m) => m.step),
    );

    const fetched = await client.getRun(runId);
    expect(fetched.data.params).toEqual({ lr: '0.001', depth: '8', optimizer: 'adamw', seed: '42' });
    expect(fetched.data.tags).toMatchObject({ model: 'm1', stage: 'smoke', note: 'ünïcode ✓', 'mlflow.runName': 'chunky' });
    expect(fetched.data.metrics.find((m) => m.key === 'val acc:top-1')).toEqual({ key: 'val acc:top-1', value: 0.125, step: 7, timestamp: 42 });

    const finished = await client.updateRun(runId, { status: 'FINISHED', endTime: 1_700_000_100_000 });
    expect(finished).toMatchObject({ status: 'FINISHED', endTime: 1_700_000_100_000 });
    expect((await client.getRun(runId)).info.status).toBe('FINISHED');
  });

  it('splits a batch over 1 MB and the server stores it all', async () => {
    const { info } = await client.createRun({ experimentId });
    const tags = Object.fromEntries(Array.from({ length: 90 }, (_, i) => [`note${i}`, `${i}:${'é'.repeat(7990)}`]));
    expect(await client.logBatch(info.runId, { tags })).toBe(2);
    const stored = (await client.getRun(info.runId)).data.tags;
    for (const [key, value] of Object.entries(tags)) expect(stored[key]).toBe(value);
  });

  it('answers with MLflow error codes for real mistakes', async () => {
    const { info } = await client.createRun({ experimentId });
    await client.logParam(info.runId, 'p', 1);
    await client.logParam(info.runId, 'p', 1); // same value again: accepted (idempotent)
    const changed = await mlflowErrorFrom(client.logParam(info.runId, 'p', 2));
    expect([changed.status, changed.errorCode, changed.attempts]).toEqual([400, 'INVALID_PARAMETER_VALUE', 1]);
    const missing = await mlflowErrorFrom(client.getRun('0123456789abcdef0123456789abcdef'));
    expect([missing.status, missing.errorCode]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    const badFilter = await mlflowErrorFrom(client.searchRuns({ experimentIds: [experimentId], filter: 'bogus syntax (((' }));
    expect(badFilter.errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(badFilter.message).toContain('Invalid clause(s) in filter string');
  });

  it('searches runs with filters, ordering and pages; finds a run by its create request id', async () => {
    const expId = await client.createExperiment(unique('search'));
    const runs = [];
    for (const [i, lr] of ['0.1', '0.01', '0.001'].entries()) {
      const run = await client.createRun({ experimentId: expId, runName: `lr-${lr}`, startTime: 1_000 + i });
      await client.logBatch(run.info.runId, { params: { lr }, metrics: [{ key: 'acc', value: i / 10, step: 0 }] });
      runs.push(run);
    }
    const filtered = await client.searchRuns({ experimentIds: [expId], filter: "params.lr = '0.01'" });
    expect(filtered.items.map((r) => r.info.runName)).toEqual(['lr-0.01']);
    const ordered = await client.searchRuns({ experimentIds: [expId], orderBy: ['metrics.acc DESC'] });
    expect(ordered.items.map((r) => r.info.runName)).toEqual(['lr-0.001', 'lr-0.01', 'lr-0.1']);
    const page1 = await client.searchRuns({ experimentIds: [expId], maxResults: 2, orderBy: ['attributes.start_time ASC'] });
    expect(page1.items.map((r) => r.info.runName)).toEqual(['lr-0.1', 'lr-0.01']);
    expect(page1.nextPageToken).toBeDefined();
    const all = await client.searchAllRuns({ experimentIds: [expId], maxResults: 1, orderBy: ['attributes.start_time ASC'] });
    expect(all.map((r) => r.info.runName)).toEqual(['lr-0.1', 'lr-0.01', 'lr-0.001']);

    // The query createRun's recovery sends after an ambiguous failure.
    const requestId = runs[1]!.data.tags[CREATE_REQUEST_ID_TAG]!;
    const byRequest = await client.searchRuns({
      experimentIds: [expId],
      filter: `tags.\`${CREATE_REQUEST_ID_TAG}\` = '${requestId}'`,
      runViewType: 'ALL',
    });
    expect(byRequest.items.map((r) => r.info.runId)).toEqual([runs[1]!.info.runId]);

    await client.deleteRun(runs[0]!.info.runId);
    expect((await client.getRun(runs[0]!.info.runId)).info.lifecycleStage).toBe('deleted');
    expect((await client.searchAllRuns({ experimentIds: [expId] })).map((r) => r.info.runName).sort()).toEqual(['lr-0.001', 'lr-0.01']);
    const deleted = await client.searchRuns({ experimentIds: [expId], runViewType: 'DELETED_ONLY' });
    expect(deleted.items.map((r) => r.info.runName)).toEqual(['lr-0.1']);
    await client.restoreRun(runs[0]!.info.runId);
    expect((await client.getRun(runs[0]!.info.runId)).info.lifecycleStage).toBe('active');
  });

  it('logs dataset inputs', async () => {
    const { info } = await client.createRun({ experimentId });
    await client.logInputs(info.runId, [
      {
        dataset: { name: 'cifar100', digest: 'd41d8cd9', sourceType: 'local', source: '{"uri": "/data/cifar-100"}', profile: '{"num_rows": 50000}' },
        tags: { 'mlflow.data.context': 'train' },
      },
    ]);
    const run = await client.getRun(info.runId);
    expect(run.inputs.datasetInputs).toEqual([
      {
        dataset: { name: 'cifar100', digest: 'd41d8cd9', sourceType: 'local', source: '{"uri": "/data/cifar-100"}', profile: '{"num_rows": 50000}' },
        tags: { 'mlflow.data.context': 'train' },
      },
    ]);
  });

  it('uploads, lists and downloads artifacts byte for byte through the server', async () => {
    const { info } = await client.createRun({ experimentId });
    const weights = new Uint8Array(300_000);
    for (let i = 0; i < weights.length; i++) weights[i] = (i * 7919 + (i >> 8)) & 0xff;
    await client.uploadArtifact(info.runId, 'model/weights v1.bin', weights);
    const local = join(scratch, 'config.yaml');
    await writeFile(local, 'name: mixer\nlayers: [1, 2, 3]\n');
    await client.uploadFile(info.runId, local, 'config.yaml');

    expect(await client.listArtifacts(info.runId)).toEqual([
      { path: 'config.yaml', isDir: false, fileSize: 30 },
      { path: 'model', isDir: true, fileSize: undefined },
    ]);
    expect(await client.listArtifacts(info.runId, 'model')).toEqual([
      { path: 'model/weights v1.bin', isDir: false, fileSize: weights.length },
    ]);
    const downloaded = await client.downloadArtifact(info.runId, 'model/weights v1.bin');
    expect(Buffer.compare(Buffer.from(downloaded), Buffer.from(weights))).toBe(0);
    await client.downloadFile(info.runId, 'config.yaml', join(scratch, 'out', 'config.yaml'));
    expect(await readFile(join(scratch, 'out', 'config.yaml'), 'utf8')).toBe('name: mixer\nlayers: [1, 2, 3]\n');
    // Where the server put them: <artifacts-destination>/<exp>/<run>/artifacts/<path>.
    const onDisk = await readFile(join(server.artifactsDir, experimentId, info.runId, 'artifacts', 'model', 'weights v1.bin'));
    expect(onDisk.equals(Buffer.from(weights))).toBe(true);

    const missing = await mlflowErrorFrom(client.downloadArtifact(info.runId, 'nope.bin'));
    expect([missing.status, missing.errorCode]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
  });

  it('refuses to upload to an experiment whose artifact root is a plain file: URI', async () => {
    const root = `file://${join(scratch, 'direct')}`;
    const expId = await client.createExperiment(unique('file-root'), { artifactLocation: root });
    const { info } = await client.createRun({ experimentId: expId });
    expect(info.artifactUri.startsWith(root)).toBe(true);
    const error = await mlflowErrorFrom(client.uploadArtifact(info.runId, 'a.txt', 'x'));
    expect(error.errorCode).toBe('UNSUPPORTED_ARTIFACT_URI');
    expect(error.message).toContain(`stores its artifacts at "${info.artifactUri}"`);
  });

  it('streams a 64 MiB file up and down byte-identical, holding far less than the file in memory', async () => {
    const size = 64 * 1024 * 1024;
    const { info } = await client.createRun({ experimentId });
    const local = join(scratch, 'checkpoint.bin');
    const sha = await writeRandomFile(local, size);

    const uploadGrowth = await peakBufferGrowth(() => client.uploadFile(info.runId, local, 'ckpt/checkpoint.bin'));
    expect(await client.listArtifacts(info.runId, 'ckpt')).toEqual([{ path: 'ckpt/checkpoint.bin', isDir: false, fileSize: size }]);
    expect(await sha256OfFile(join(server.artifactsDir, experimentId, info.runId, 'artifacts', 'ckpt', 'checkpoint.bin'))).toBe(sha);

    const downloaded = join(scratch, 'down', 'checkpoint.bin');
    const downloadGrowth = await peakBufferGrowth(() => client.downloadFile(info.runId, 'ckpt/checkpoint.bin', downloaded));
    expect(await sha256OfFile(downloaded)).toBe(sha);
    expect(await readdir(join(scratch, 'down'))).toEqual(['checkpoint.bin']);

    expect(uploadGrowth).toBeLessThan(16 * 1024 * 1024);
    expect(downloadGrowth).toBeLessThan(16 * 1024 * 1024);
    console.log(`64 MiB artifact: buffers grew ${(uploadGrowth / 2 ** 20).toFixed(1)} MiB uploading, ${(downloadGrowth / 2 ** 20).toFixed(1)} MiB downloading`);
  }, 120_000);

  it('a download of an artifact that does not exist leaves no file', async () => {
    const { info } = await client.createRun({ experimentId });
    const target = join(scratch, 'missing', 'nope.bin');
    const error = await mlflowErrorFrom(client.downloadFile(info.runId, 'nope.bin', target));
    expect([error.status, error.errorCode]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    expect(await readdir(join(scratch, 'missing'))).toEqual([]);
  });
});
