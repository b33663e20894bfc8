// The client against a fake server that replays answers recorded from a real MLflow 3.17.2
// (recorded-responses.ts): error codes, retries, run-creation recovery, chunking, secrets.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { CREATE_REQUEST_ID_TAG, MlflowClient, type MlflowClientOptions } from './client.ts';
import type { RetryEvent } from './http.ts';
import { RUN_ID, recorded, runWithArtifactUri } from './recorded-responses.ts';
import { startFakeMlflow, type FakeMlflow, type RecordedRequest, mlflowErrorFrom } from './testing.ts';

const API = '/api/2.0/mlflow';
const PASSWORD = 'pw-Hunter2-secret';
const TOKEN = 'tok-Very-Secret-42';

let fake: FakeMlflow;
afterEach(async () => {
  await fake?.close();
});

interface Harness {
  client: MlflowClient;
  sleeps: number[];
  retries: RetryEvent[];
}

function clientFor(server: FakeMlflow, options: Partial<MlflowClientOptions> = {}): Harness {
  const sleeps: number[] = [];
  const retries: RetryEvent[] = [];
  const client = new MlflowClient({
    trackingUri: server.uri,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    onRetry: (event) => retries.push(event),
    ...options,
  });
  return { client, sleeps, retries };
}

describe('MLflow errors become typed MlflowErrors', () => {
  it('returns undefined for an experiment name that does not exist (404 RESOURCE_DOES_NOT_EXIST)', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/experiments/get-by-name`]: recorded.experimentNotFound });
    const { client } = clientFor(fake);
    expect(await client.getExperimentByName('nope')).toBeUndefined();
    expect(fake.requests[0]?.query).toEqual({ experiment_name: 'nope' });
  });

  it('carries status, error_code, endpoint and message, and does not retry a 404', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.runNotFound });
    const { client, sleeps } = clientFor(fake);
    const error = await mlflowErrorFrom(client.getRun('deadbeef'));
    expect(error.status).toBe(404);
    expect(error.errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(error.endpoint).toBe('GET /api/2.0/mlflow/runs/get');
    expect(error.attempts).toBe(1);
    expect(error.message).toBe('MLflow GET /api/2.0/mlflow/runs/get: 404 RESOURCE_DOES_NOT_EXIST: Run with id=deadbeef not found');
    expect(sleeps).toEqual([]);
  });

  it('does not retry INVALID_PARAMETER_VALUE', async () => {
    fake = await startFakeMlflow({ [`POST ${API}/runs/log-parameter`]: recorded.paramChanged });
    const { client } = clientFor(fake);
    const error = await mlflowErrorFrom(client.logParam(RUN_ID, 'p', 2));
    expect([error.status, error.errorCode]).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    expect(error.message).toContain('Changing param values is not allowed');
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.json).toEqual({ run_id: RUN_ID, key: 'p', value: '2' });
  });

  it('turns the HTML 401 of basic-auth into UNAUTHENTICATED with a hint, not retried', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.unauthenticated });
    const { client } = clientFor(fake);
    const error = await mlflowErrorFrom(client.getRun(RUN_ID));
    expect([error.status, error.errorCode, error.attempts]).toEqual([401, 'UNAUTHENTICATED', 1]);
    expect(error.message).toContain('You are not authenticated.');
    expect(error.message).toContain('no credentials were sent; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD');
  });
});

describe('secrets', () => {
  const leaks = (text: string) =>
    [PASSWORD, TOKEN, Buffer.from(`alice:${PASSWORD}`).toString('base64')].filter((secret) => text.includes(secret));

  it('sends basic auth but never shows the password (errors, retries, inspect, toString)', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: [{ status: 503, text: 'busy' }, recorded.unauthenticated] });
    const { client, retries } = clientFor(fake, { auth: { username: 'alice', password: PASSWORD } });
    const error = await mlflowErrorFrom(client.getRun(RUN_ID));
    expect(fake.requests.map((r) => r.headers.authorization)).toEqual([
      `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`,
      `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`,
    ]);
    expect(error.message).toContain('(sent basic auth as "alice"; check MLFLOW_TRACKING_USERNAME');
    const shown = [
      error.message,
      error.stack ?? '',
      inspect(error, { depth: 10, showHidden: true }),
      JSON.stringify(error),
      inspect(retries, { depth: 10 }),
      inspect(client, { depth: 10, showHidden: true }),
      String(client),
      JSON.stringify(client),
    ].join('\n');
    expect(leaks(shown)).toEqual([]);
    expect(String(client)).toBe(`MlflowClient(${fake.uri}, basic auth as "alice")`);
  });

  it('sends a bearer token from MLFLOW_TRACKING_TOKEN and never shows it', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.unauthenticated });
    const client = MlflowClient.fromEnv({ MLFLOW_TRACKING_URI: fake.uri, MLFLOW_TRACKING_TOKEN: TOKEN });
    const error = await mlflowErrorFrom(client.getRun(RUN_ID));
    expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(error.message).toContain('sent a bearer token');
    expect(leaks([error.message, inspect(error), inspect(client), String(client)].join('\n'))).toEqual([]);
  });

  it('takes credentials from the URI without keeping them in it', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.runCreated });
    const client = new MlflowClient({ trackingUri: fake.uri.replace('http://', `http://alice:${PASSWORD}@`) });
    await client.getRun(RUN_ID);
    expect(client.trackingUri).toBe(fake.uri);
    expect(fake.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`);
  });

  it('fails clearly without MLFLOW_TRACKING_URI', () => {
    expect(() => MlflowClient.fromEnv({})).toThrow('MLFLOW_TRACKING_URI is not set');
  });
});

describe('retries', () => {
  it('retries 503, 503 then succeeds, with exponential backoff and jitter', async () => {
    fake = await startFakeMlflow({
      [`GET ${API}/runs/get`]: [{ status: 503, text: 'Service Unavailable' }, { status: 503, text: 'Service Unavailable' }, recorded.runCreated],
    });
    const { client, sleeps, retries } = clientFor(fake);
    const run = await client.getRun(RUN_ID);
    expect(run.info.runId).toBe(RUN_ID);
    expect(fake.requests).toHaveLength(3);
    // base 500 ms doubling; equal jitter with random()=0.5 gives 3/4 of each step.
    expect(sleeps).toEqual([375, 750]);
    expect(retries.map((r) => [r.attempt, r.error.status, r.error.errorCode])).toEqual([
      [1, 503, 'TEMPORARILY_UNAVAILABLE'],
      [2, 503, 'TEMPORARILY_UNAVAILABLE'],
    ]);
  });

  it('keeps the jitter between half and all of the exponential step, capped at maxDelayMs', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: { status: 502, text: 'bad gateway' } });
    const low = clientFor(fake, { random: () => 0, retry: { maxRetries: 6, baseDelayMs: 100, maxDelayMs: 1000 } });
    const error = await mlflowErrorFrom(low.client.getRun(RUN_ID));
    expect(error.attempts).toBe(7);
    expect(error.errorCode).toBe('INTERNAL_ERROR');
    expect(low.sleeps).toEqual([50, 100, 200, 400, 500, 500]);
    const high = clientFor(fake, { random: () => 0.999999, retry: { maxRetries: 3, baseDelayMs: 100, maxDelayMs: 1000 } });
    await mlflowErrorFrom(high.client.getRun(RUN_ID));
    expect(high.sleeps).toEqual([100, 200, 400]);
  });

  it('honours Retry-After on 429', async () => {
    fake = await startFakeMlflow({
      [`POST ${API}/runs/log-batch`]: [
        { status: 429, headers: { 'retry-after': '3' }, json: { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' } },
        recorded.empty,
      ],
    });
    const { client, sleeps } = clientFor(fake);
    await client.logBatch(RUN_ID, { metrics: [{ key: 'loss', value: 1, timestamp: 5 }] });
    expect(sleeps).toEqual([3000]);
    expect(fake.requestsTo(`POST ${API}/runs/log-batch`)).toHaveLength(2);
  });

  it('times a slow answer out per attempt and retries the idempotent call', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: [{ ...recorded.runCreated, delayMs: 1500 }, recorded.runCreated] });
    const { client, retries } = clientFor(fake, { timeoutMs: 200 });
    const run = await client.getRun(RUN_ID);
    expect(run.info.status).toBe('RUNNING');
    expect(retries[0]?.error.errorCode).toBe('TIMEOUT');
    expect(retries[0]?.error.message).toBe(`MLflow GET /api/2.0/mlflow/runs/get: no answer within 200 ms (${fake.uri})`);
  });

  it('reports a server that is not there as NETWORK_ERROR after retrying', async () => {
    fake = await startFakeMlflow();
    const uri = fake.uri;
    await fake.close();
    const { client, sleeps } = clientFor({ ...fake, uri }, { retry: { maxRetries: 2 } });
    const error = await mlflowErrorFrom(client.getRun(RUN_ID));
    expect([error.errorCode, error.status, error.attempts]).toEqual(['NETWORK_ERROR', undefined, 3]);
    expect(error.message).toBe(`MLflow GET /api/2.0/mlflow/runs/get: cannot reach ${uri}: ECONNREFUSED`);
    expect(sleeps).toHaveLength(2);
  });

  it('takes the retry count and timeout from MLFLOW_HTTP_REQUEST_MAX_RETRIES / _TIMEOUT', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: { ...recorded.runCreated, delayMs: 1000 } });
    const client = MlflowClient.fromEnv(
      { MLFLOW_TRACKING_URI: fake.uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES: '1', MLFLOW_HTTP_REQUEST_TIMEOUT: '0.1' },
      { sleep: async () => {} },
    );
    const error = await mlflowErrorFrom(client.getRun(RUN_ID));
    expect([error.errorCode, error.attempts]).toEqual(['TIMEOUT', 2]);
    expect(error.message).toContain('no answer within 100 ms');
  });

  it('stops at once when the caller aborts', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: { ...recorded.runCreated, delayMs: 2000 } });
    const { client, sleeps } = clientFor(fake);
    const error = await mlflowErrorFrom(client.getRun(RUN_ID, { signal: AbortSignal.timeout(100) }));
    expect(error.errorCode).toBe('ABORTED');
    expect(sleeps).toEqual([]);
  });
});

describe('creating runs and experiments is never duplicated', () => {
  const searchRoute = `POST ${API}/runs/search`;
  const createRoute = `POST ${API}/runs/create`;
  const requestIdOf = (request: RecordedRequest | undefined) =>
    (request?.json as { tags: { key: string; value: string }[] }).tags.find((t) => t.key === CREATE_REQUEST_ID_TAG)?.value;

  it('after a 503 whose run was created anyway, finds it by request id instead of creating another', async () => {
    const created: unknown[] = [];
    fake = await startFakeMlflow({
      [createRoute]: (request) => {
        // The server stored the run, then the proxy in front of it answered 503.
        created.push(request.json);
        return { status: 503, text: 'upstream timed out' };
      },
      [searchRoute]: (request) => {
        const filter = (request.json as { filter: string }).filter;
        const id = requestIdOf(fake.requestsTo(createRoute)[0]);
        return filter === `tags.\`${CREATE_REQUEST_ID_TAG}\` = '${id}'` ? { json: { runs: [recorded.runCreated.json.run] } } : { json: {} };
      },
    });
    const { client } = clientFor(fake);
    const run = await client.createRun({ experimentId: '1', runName: 'r1', startTime: 1_700_000_000_000, tags: { x: 'y' } });
    expect(run.info.runId).toBe(RUN_ID);
    expect(created).toHaveLength(1);
    expect(fake.requestsTo(searchRoute)).toHaveLength(1);
    expect(fake.requestsTo(searchRoute)[0]?.json).toMatchObject({ experiment_ids: ['1'], run_view_type: 'ALL', max_results: 1 });
    expect(created[0]).toMatchObject({ experiment_id: '1', run_name: 'r1', start_time: 1_700_000_000_000 });
  });

  it('searches for the run even when the last attempt was ambiguous', async () => {
    fake = await startFakeMlflow({
      [createRoute]: { status: 504, text: 'gateway timeout' },
      [searchRoute]: [recorded.empty, { json: { runs: [recorded.runCreated.json.run] } }],
    });
    const { client } = clientFor(fake, { retry: { maxRetries: 1 } });
    expect((await client.createRun({ experimentId: '1' })).info.runId).toBe(RUN_ID);
    expect(fake.requestsTo(createRoute)).toHaveLength(2);
    expect(fake.requestsTo(searchRoute)).toHaveLength(2);
  });

  it('after a dropped connection with no run created, creates it again with the same request id', async () => {
    fake = await startFakeMlflow({
      [createRoute]: [{ drop: true }, recorded.runCreated],
      [searchRoute]: recorded.empty,
    });
    const { client, retries } = clientFor(fake);
    const run = await client.createRun({ experimentId: '1', runName: 'r1' });
    expect(run.info.runName).toBe('r1');
    const creates = fake.requestsTo(createRoute);
    expect(creates).toHaveLength(2);
    expect(requestIdOf(creates[0])).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdOf(creates[1])).toBe(requestIdOf(creates[0]));
    expect(retries[0]?.error.errorCode).toBe('NETWORK_ERROR');
  });

  it('retries a 429 on create without searching (the server refused it outright)', async () => {
    fake = await startFakeMlflow({
      [createRoute]: [{ status: 429, json: { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'too many' } }, recorded.runCreated],
    });
    const { client } = clientFor(fake);
    await client.createRun({ experimentId: '1' });
    expect(fake.requestsTo(createRoute)).toHaveLength(2);
    expect(fake.requestsTo(searchRoute)).toHaveLength(0);
  });

  it('does not retry a rejected create', async () => {
    fake = await startFakeMlflow({ [createRoute]: recorded.experimentNotFound });
    const { client } = clientFor(fake);
    const error = await mlflowErrorFrom(client.createRun({ experimentId: '99' }));
    expect(error.errorCode).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(fake.requests).toHaveLength(1);
  });

  it('createExperiment after an ambiguous failure returns the experiment the first attempt made', async () => {
    fake = await startFakeMlflow({
      [`POST ${API}/experiments/create`]: [{ status: 500, text: 'oops' }, recorded.experimentExists],
      [`GET ${API}/experiments/get-by-name`]: [recorded.experimentNotFound, recorded.experiment],
    });
    const { client } = clientFor(fake);
    expect(await client.createExperiment('probe')).toBe('1');
    expect(fake.requestsTo(`POST ${API}/experiments/create`)).toHaveLength(2);
  });

  it('getOrCreateExperiment creates when missing and survives losing a race', async () => {
    fake = await startFakeMlflow({
      [`GET ${API}/experiments/get-by-name`]: [recorded.experimentNotFound, recorded.experiment],
      [`POST ${API}/experiments/create`]: recorded.experimentExists,
    });
    const { client } = clientFor(fake);
    expect(await client.getOrCreateExperiment('probe')).toBe('1');
  });
});

describe('logging', () => {
  it('sends 2,500 metrics as 3 log-batch requests, NaN and ±Infinity as strings', async () => {
    fake = await startFakeMlflow({ [`POST ${API}/runs/log-batch`]: recorded.empty });
    const { client } = clientFor(fake);
    const special = [NaN, Infinity, -Infinity];
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: 'loss', value: i < 3 ? special[i]! : i / 10, step: i, timestamp: 1000 + i }));
    const requests = await client.logBatch(RUN_ID, { metrics, params: { lr: 0.001, depth: 8, fused: true }, tags: { model: 'm' } });
    expect(requests).toBe(3);
    const bodies = fake.requestsTo(`POST ${API}/runs/log-batch`).map((r) => r.json as Record<string, unknown[]>);
    expect(bodies.map((b) => [b.params?.length, b.tags?.length, b.metrics?.length])).toEqual([
      [3, 1, 996],
      [0, 0, 1000],
      [0, 0, 504],
    ]);
    expect(bodies[0]?.params).toEqual([
      { key: 'lr', value: '0.001' },
      { key: 'depth', value: '8' },
      { key: 'fused', value: 'true' },
    ]);
    expect(bodies[0]?.metrics?.slice(0, 4)).toEqual([
      { key: 'loss', value: 'NaN', timestamp: 1000, step: 0 },
      { key: 'loss', value: 'Infinity', timestamp: 1001, step: 1 },
      { key: 'loss', value: '-Infinity', timestamp: 1002, step: 2 },
      { key: 'loss', value: 0.3, timestamp: 1003, step: 3 },
    ]);
    expect(fake.requests.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
  });

  it('splits a payload over 1 MB into requests under 1 MB', async () => {
    fake = await startFakeMlflow({ [`POST ${API}/runs/log-batch`]: recorded.empty });
    const { client } = clientFor(fake);
    const tags = Object.fromEntries(Array.from({ length: 90 }, (_, i) => [`note${i}`, 'é'.repeat(8000)]));
    expect(await client.logBatch(RUN_ID, { tags })).toBe(2);
    const sizes = fake.requests.map((r) => r.body.length);
    expect(sizes.every((size) => size <= 1_000_000)).toBe(true);
    expect(sizes.reduce((a, b) => a + b)).toBeGreaterThan(1_400_000);
  });

  it('refuses a bad key before sending anything', async () => {
    fake = await startFakeMlflow({ [`POST ${API}/runs/log-batch`]: recorded.empty });
    const { client } = clientFor(fake);
    const metrics = Array.from({ length: 1500 }, (_, i) => ({ key: i === 1200 ? 'val acc%' : 'acc', value: 1 }));
    const error = await mlflowErrorFrom(client.logBatch(RUN_ID, { metrics }));
    expect(error.message).toContain('metric key (metrics[1200]) "val acc%" contains "%"');
    expect(fake.requests).toHaveLength(0);
    await mlflowErrorFrom(client.setTag(RUN_ID, '../escape', 'x'));
    await mlflowErrorFrom(client.logParam(RUN_ID, 'p', 'x'.repeat(6001)));
    expect(fake.requests).toHaveLength(0);
  });

  it('reads a paged metric history and restores NaN and ±Infinity', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/metrics/get-history`]: [recorded.historyPage1, recorded.historyPage2] });
    const { client } = clientFor(fake);
    const history = await client.getMetricHistory(RUN_ID, 'm', { pageSize: 2 });
    expect(history.map((m) => [m.value, m.step, m.timestamp])).toEqual([
      [NaN, 0, 1],
      [Infinity, 1, 2],
      [-Infinity, 2, 3],
      [1.5, 3, 4],
    ]);
    expect(fake.requests.map((r) => r.query)).toEqual([
      { run_id: RUN_ID, metric_key: 'm', max_results: '2' },
      { run_id: RUN_ID, metric_key: 'm', max_results: '2', page_token: 'eyJvZmZzZXQiOiAyfQ==' },
    ]);
  });
});

describe('artifacts', () => {
  it('uses the proxied artifact endpoint derived from the run artifact URI', async () => {
    fake = await startFakeMlflow({
      [`GET ${API}/runs/get`]: recorded.runCreated,
      [`PUT /api/2.0/mlflow-artifacts/artifacts/1/${RUN_ID}/artifacts/model/my%20weights.bin`]: recorded.empty,
      [`GET /api/2.0/mlflow-artifacts/artifacts`]: { json: { files: [{ path: 'my weights.bin', is_dir: false, file_size: 3 }] } },
    });
    const { client } = clientFor(fake);
    await client.uploadArtifact(RUN_ID, 'model/my weights.bin', new Uint8Array([1, 2, 3]));
    const files = await client.listArtifacts(RUN_ID, 'model');
    expect(files).toEqual([{ path: 'model/my weights.bin', isDir: false, fileSize: 3 }]);
    const put = fake.requests.find((r) => r.method === 'PUT');
    expect([...(put?.body ?? [])]).toEqual([1, 2, 3]);
    expect(fake.requests.at(-1)?.query).toEqual({ path: `1/${RUN_ID}/artifacts/model` });
    // The run's artifact root is looked up once.
    expect(fake.requestsTo(`GET ${API}/runs/get`)).toHaveLength(1);
  });

  it.each(['file:///srv/mlruns/1/abc/artifacts', 's3://bucket/mlruns/1/abc/artifacts', '/srv/mlruns/1/abc/artifacts'])(
    'refuses an artifact root it cannot reach: %s',
    async (uri) => {
      fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: runWithArtifactUri(uri) });
      const { client } = clientFor(fake);
      const error = await mlflowErrorFrom(client.uploadArtifact(RUN_ID, 'a.txt', 'x'));
      expect(error.errorCode).toBe('UNSUPPORTED_ARTIFACT_URI');
      expect(error.message).toContain(`stores its artifacts at "${uri}"`);
      expect(error.message).toContain('--serve-artifacts');
      expect(fake.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
    },
  );

  it('refuses artifact paths that climb out of the run', async () => {
    fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.runCreated });
    const { client } = clientFor(fake);
    expect((await mlflowErrorFrom(client.downloadArtifact(RUN_ID, 'a/../../x'))).message).toContain('".." segments');
    expect((await mlflowErrorFrom(client.uploadArtifact(RUN_ID, '', 'x'))).message).toContain('needs a path');
  });

  describe('files', () => {
    const ARTIFACT = `/api/2.0/mlflow-artifacts/artifacts/1/${RUN_ID}/artifacts/ckpt/model.bin`;
    const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
    let scratch: string | undefined;
    afterEach(async () => {
      if (scratch) await rm(scratch, { recursive: true, force: true });
      scratch = undefined;
    });

    it('uploads a file with its Content-Length and resends the whole file after a 503', async () => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      const content = randomBytes(3 * 1024 * 1024 + 17);
      const local = join(scratch, 'model.bin');
      await writeFile(local, content);
      fake = await startFakeMlflow({
        [`GET ${API}/runs/get`]: recorded.runCreated,
        [`PUT ${ARTIFACT}`]: [{ status: 503, text: '<html>Service Unavailable</html>' }, recorded.empty],
      });
      const { client, retries } = clientFor(fake);
      await client.uploadFile(RUN_ID, local, 'ckpt/model.bin');
      const puts = fake.requestsTo(`PUT ${ARTIFACT}`);
      expect(puts).toHaveLength(2);
      for (const put of puts) {
        expect(put.headers['content-length']).toBe(String(content.length));
        expect(put.headers['transfer-encoding']).toBeUndefined();
        expect(put.headers['content-type']).toBe('application/octet-stream');
        expect(sha256(put.body)).toBe(sha256(content));
      }
      expect(retries.map((r) => [r.endpoint, r.error.status])).toEqual([[`PUT ${ARTIFACT}`, 503]]);
    });

    it('says which local file is missing, before sending anything', async () => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.runCreated });
      const { client } = clientFor(fake);
      await expect(client.uploadFile(RUN_ID, '/nonexistent/model.bin', 'ckpt/model.bin')).rejects.toThrow(/ENOENT.*\/nonexistent\/model\.bin/);
      await expect(client.uploadFile(RUN_ID, scratch, 'ckpt/model.bin')).rejects.toThrow(`cannot upload ${scratch}: not a file`);
      expect(fake.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
    });

    it('stops, without retrying, when the file changes during the upload', async () => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      const local = join(scratch, 'model.bin');
      await writeFile(local, randomBytes(1024 * 1024));
      fake = await startFakeMlflow({
        // The file is opened before the run's artifact root is looked up: shrink it in between.
        [`GET ${API}/runs/get`]: () => {
          writeFileSync(local, 'short');
          return recorded.runCreated;
        },
        [`PUT ${ARTIFACT}`]: recorded.empty,
      });
      const { client, retries } = clientFor(fake);
      const error = await mlflowErrorFrom(client.uploadFile(RUN_ID, local, 'ckpt/model.bin'));
      expect([error.errorCode, error.attempts, error.endpoint]).toEqual(['LOCAL_FILE_ERROR', 1, `PUT ${ARTIFACT}`]);
      expect(error.message).toContain('changed or was removed during the upload');
      expect(retries).toEqual([]);
    });

    it('refuses, without retrying, to follow a redirect with a file (it would have to buffer it)', async () => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      const local = join(scratch, 'model.bin');
      await writeFile(local, 'weights');
      fake = await startFakeMlflow({
        [`GET ${API}/runs/get`]: recorded.runCreated,
        [`PUT ${ARTIFACT}`]: { status: 307, headers: { location: 'https://elsewhere.example/upload' } },
      });
      const { client } = clientFor(fake);
      const error = await mlflowErrorFrom(client.uploadFile(RUN_ID, local, 'ckpt/model.bin'));
      expect([error.errorCode, error.attempts]).toEqual(['BAD_RESPONSE', 1]);
      expect(error.message).toContain('answered with a redirect');
    });

    it('downloads to a file; a connection dropped mid-body is retried from the start', async () => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      const content = randomBytes(2 * 1024 * 1024 + 5);
      fake = await startFakeMlflow({
        [`GET ${API}/runs/get`]: recorded.runCreated,
        [`GET ${ARTIFACT}`]: [{ bytes: content, cutAfter: 1024 * 1024 }, { bytes: content }],
      });
      const { client, retries } = clientFor(fake);
      const target = join(scratch, 'out', 'model.bin');
      await client.downloadFile(RUN_ID, 'ckpt/model.bin', target);
      expect(sha256(await readFile(target))).toBe(sha256(content));
      expect(retries.map((r) => r.error.errorCode)).toEqual(['NETWORK_ERROR']);
      expect(await readdir(join(scratch, 'out'))).toEqual(['model.bin']);
    });

    it('limits a file transfer by silence, not by its length: slow is fine, stalled is a TIMEOUT', async () => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      const content = randomBytes(8 * 1024);
      fake = await startFakeMlflow({
        [`GET ${API}/runs/get`]: recorded.runCreated,
        // 8 pieces 60 ms apart: 420 ms in all, against a 200 ms timeout.
        [`GET ${ARTIFACT}`]: [{ bytes: content, pace: { bytes: 1024, everyMs: 60 } }, { bytes: content, pace: { bytes: 1024, everyMs: 1000 } }],
      });
      const { client } = clientFor(fake, { timeoutMs: 200, retry: { maxRetries: 0 } });
      const target = join(scratch, 'model.bin');
      await client.downloadFile(RUN_ID, 'ckpt/model.bin', target);
      expect((await readFile(target)).equals(content)).toBe(true);

      const stalled = await mlflowErrorFrom(client.downloadFile(RUN_ID, 'ckpt/model.bin', join(scratch, 'stalled.bin')));
      expect([stalled.errorCode, stalled.transient]).toEqual(['TIMEOUT', true]);
      expect(stalled.message).toContain('no progress for 200 ms');
      expect((await readdir(scratch)).sort()).toEqual(['model.bin']);
    });

    it('keeps an upload that the server reads slowly going past the timeout', async () => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      const local = join(scratch, 'model.bin');
      const content = randomBytes(1024 * 1024);
      await writeFile(local, content);
      fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.runCreated });
      const received: Uint8Array[] = [];
      let readingMs = 0;
      // The server's side of the PUT: it takes each chunk 40 ms after the last.
      const slowReader: typeof fetch = async (input, init) => {
        if (init?.method !== 'PUT') return fetch(input, init);
        const started = Date.now();
        for await (const chunk of init.body as ReadableStream<Uint8Array>) {
          received.push(chunk);
          await new Promise((resolve) => setTimeout(resolve, 40));
          init.signal?.throwIfAborted();
        }
        readingMs = Date.now() - started;
        return new Response('{}', { status: 200 });
      };
      const { client } = clientFor(fake, { timeoutMs: 200, retry: { maxRetries: 0 }, fetch: slowReader });
      await client.uploadFile(RUN_ID, local, 'ckpt/model.bin');
      expect(readingMs).toBeGreaterThan(400);
      expect(Buffer.concat(received).equals(content)).toBe(true);
    });

    it.each([
      ['a server error', { status: 500, json: { error_code: 'INTERNAL_ERROR', message: 'boom' } }, 'INTERNAL_ERROR'],
      ['a body cut short', { bytes: new Uint8Array(4096).fill(7), cutAfter: 1000 }, 'NETWORK_ERROR'],
    ] as const)('a failed download (%s) leaves no file, and an older file at the path untouched', async (_, answer, code) => {
      scratch = await mkdtemp(join(tmpdir(), 'mlflow-files-'));
      fake = await startFakeMlflow({ [`GET ${API}/runs/get`]: recorded.runCreated, [`GET ${ARTIFACT}`]: answer });
      const { client } = clientFor(fake, { retry: { maxRetries: 1 } });
      const fresh = join(scratch, 'new', 'model.bin');
      const error = await mlflowErrorFrom(client.downloadFile(RUN_ID, 'ckpt/model.bin', fresh));
      expect([error.errorCode, error.attempts]).toEqual([code, 2]);
      expect(await readdir(join(scratch, 'new'))).toEqual([]);

      const existing = join(scratch, 'model.bin');
      await writeFile(existing, 'the previous checkpoint');
      await mlflowErrorFrom(client.downloadFile(RUN_ID, 'ckpt/model.bin', existing));
      expect(await readFile(existing, 'utf8')).toBe('the previous checkpoint');
      expect((await readdir(scratch)).sort()).toEqual(['model.bin', 'new']);
    });
  });
});
