import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CIFAR100 } from '@tessera/data';
import { bundledCifarPlaces, checkBackends, checkCifar100, checkMlflow, checkNode, checkTracking, formatChecks } from './doctor.ts';
import { main } from '../main.ts';

const root = mkdtempSync(join(tmpdir(), 'tessera-doctor-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('exp doctor checks', () => {
  it('wants Node 20 or newer', () => {
    expect(checkNode('20.1.0').ok).toBe(true);
    expect(checkNode('18.19.0')).toMatchObject({ ok: false, fix: expect.stringContaining('Node 20') });
  });

  it('reports each backend, the one auto would take, and how to get the native one', () => {
    const checks = checkBackends(
      [
        { name: 'tensorflow', available: false, description: 'not installed' },
        { name: 'cpu', available: true, description: 'JavaScript' },
      ],
      'run scripts/setup-tensorflow.sh',
    );
    expect(checks.map((c) => [c.name, c.ok])).toEqual([['backend tensorflow', false], ['backend cpu', true], ['backend auto', true]]);
    expect(checks[0]!.fix).toBe('run scripts/setup-tensorflow.sh');
    expect(checks[2]!.detail).toBe('backend: auto would use cpu');
    expect(checkBackends([], '').at(-1)!.ok).toBe(false);
  });

  it('checks that the run store is writable and prints fixes under failures', async () => {
    const [local] = await checkTracking(join(root, 'runs'), {});
    expect(local).toMatchObject({ ok: true, detail: `runs are recorded in ${join(root, 'runs')}` });
    const text = formatChecks([{ name: 'node', ok: false, detail: 'Node 18', fix: 'install Node 20' }, { name: 'data', ok: false, optional: true, detail: 'none' }]);
    expect(text).toBe('FAIL  node                   Node 18\n      fix: install Node 20\n --   data                   none');
  });

  it('runs as a command and exits 0 when the essentials are there', async () => {
    const out: string[] = [];
    for (const name of ['MLFLOW_TRACKING_URI', 'MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD', 'MLFLOW_TRACKING_TOKEN']) vi.stubEnv(name, undefined);
    try {
      expect(await main(['doctor'], { stdout: { write: (t: string) => out.push(t) } })).toBe(0);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(out.join('')).toMatch(/ ok {3}backend cpu/);
    expect(out.join('')).toMatch(/\n( ok |FAIL| -- ) {2}data cifar100 /);
  });
});

describe('the data check: where the bundled CIFAR-100 experiments will find the files', () => {
  // A clone with the real base file, a shared/ folder beside it (as on the project's machines), a cache.
  const clone = join(root, 'clone');
  const base = join(clone, 'experiments', 'base', 'cifar100.yaml');
  const shared = join(root, 'shared', 'data', 'cifar-100');
  const inClone = join(clone, 'data', 'cifar-100');
  const cache = join(root, 'cache');
  const env = { TESSERA_CACHE: cache };
  const put = (dir: string, ...files: string[]) => {
    mkdirSync(dir, { recursive: true });
    for (const file of files) writeFileSync(join(dir, file), '');
  };
  const check = async (environment: NodeJS.ProcessEnv) => checkCifar100(CIFAR100, await bundledCifarPlaces(base, environment), 'experiments/base/cifar100.yaml');

  beforeAll(() => {
    mkdirSync(join(clone, 'experiments', 'base'), { recursive: true });
    copyFileSync(join(import.meta.dirname, '../../../../experiments/base/cifar100.yaml'), base);
  });

  it('resolves data.search relative to the base file, after TESSERA_DATA_DIR and before the cache', async () => {
    expect(await bundledCifarPlaces(base, { TESSERA_DATA_DIR: '/data/c100', TESSERA_CACHE: cache })).toEqual({
      dir: '/data/c100',
      dirFrom: 'TESSERA_DATA_DIR',
      searchDirs: [shared, inClone],
      cacheDir: cache,
    });
  });

  it('says where each place is when none has the data, and how to fix it', async () => {
    const result = await check(env);
    expect(result).toEqual({
      name: 'data cifar100',
      ok: false,
      optional: true,
      detail: `CIFAR-100 not found; looked in TESSERA_DATA_DIR (unset), ${shared}, ${inClone}, ${cache} (the cache)`,
      fix:
        `put train.bin and test.bin (or .gz) into ${shared} or a directory named by TESSERA_DATA_DIR, or let the first run download ` +
        `${CIFAR100.archive.url} (md5 ${CIFAR100.archive.md5}) into the cache; experiments/smoke.yaml needs no files`,
    });
  });

  it('finds the shared folder beside the clone through data.search', async () => {
    put(shared, 'train.bin.gz', 'test.bin.gz');
    expect(await check(env)).toEqual({
      name: 'data cifar100',
      ok: true,
      optional: true,
      detail: `CIFAR-100 binaries in ${shared} (found through data.search of experiments/base/cifar100.yaml)`,
    });
  });

  it('prefers TESSERA_DATA_DIR (or its cifar-100-binary folder), as the dataset does', async () => {
    const own = join(root, 'own');
    put(join(own, 'cifar-100-binary'), 'train.bin', 'test.bin');
    expect((await check({ ...env, TESSERA_DATA_DIR: own })).detail).toBe(`CIFAR-100 binaries in ${join(own, 'cifar-100-binary')} (found through TESSERA_DATA_DIR)`);
  });

  it('falls back to the cache: a downloaded archive', async () => {
    rmSync(join(root, 'shared'), { recursive: true });
    put(cache, 'cifar-100-binary.tar.gz');
    expect(await check(env)).toMatchObject({ ok: true, detail: `CIFAR-100 archive ${join(cache, 'cifar-100-binary.tar.gz')} (found through the cache; extracted on first use)` });
  });
});

describe('the MLflow check', () => {
  let server: Server;
  let url: string;
  const requests: { path: string | undefined; authorization: string | undefined }[] = [];
  const good = `Basic ${Buffer.from('alice:s3cret-pw').toString('base64')}`;

  beforeAll(async () => {
    // A stand-in for `mlflow server --app-name basic-auth`: experiments/search with alice's password only.
    server = createServer((request, response) => {
      requests.push({ path: request.url, authorization: request.headers.authorization });
      request.resume();
      if (request.url === '/api/2.0/mlflow/experiments/search') {
        const ok = request.headers.authorization === good;
        response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        response.end(JSON.stringify(ok ? { experiments: [] } : { error_code: 'UNAUTHENTICATED', message: 'You are not authenticated.' }));
      }
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const credentials = { MLFLOW_TRACKING_USERNAME: 'alice', MLFLOW_TRACKING_PASSWORD: 's3cret-pw' };

  it('says that MLflow is off without MLFLOW_TRACKING_URI', async () => {
    expect(await checkMlflow({}, 3000)).toMatchObject({ ok: true, optional: true, detail: expect.stringMatching(/^off: MLFLOW_TRACKING_URI is not set/) });
  });

  it('says that MLFLOW_TRACKING_URI alone selects MLflow, and asks the server with the run\'s credentials', async () => {
    requests.length = 0;
    const check = await checkMlflow({ MLFLOW_TRACKING_URI: url, ...credentials }, 3000);
    expect(check).toEqual({
      name: 'tracking mlflow',
      ok: true,
      detail: `MLFLOW_TRACKING_URI selects MLflow: every run is logged to ${url} (basic auth as "alice") as well; the server answers`,
    });
    expect(requests).toEqual([{ path: '/api/2.0/mlflow/experiments/search', authorization: good }]);
  });

  it('fails (a run would exit before training) when the server refuses the credentials, without printing them', async () => {
    for (const env of [
      { MLFLOW_TRACKING_URI: url, MLFLOW_TRACKING_USERNAME: 'alice', MLFLOW_TRACKING_PASSWORD: 'wrong-pw' },
      { MLFLOW_TRACKING_URI: url.replace('//', '//alice:wrong-pw@') },
      { MLFLOW_TRACKING_URI: url, MLFLOW_TRACKING_TOKEN: 'tok-123456' },
    ]) {
      const check = await checkMlflow(env, 3000);
      expect(check).toMatchObject({ ok: false, detail: expect.stringContaining(`${url}`) });
      expect(check.optional).toBeUndefined();
      expect(check.detail).toMatch(/refuses the credentials: .*401 UNAUTHENTICATED/);
      expect(check.fix).toMatch(/MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN/);
      expect(formatChecks([check])).not.toMatch(/wrong-pw|tok-123456/);
    }
    // Credentials in the URI are sent as basic auth, never shown.
    const inUri = await checkMlflow({ MLFLOW_TRACKING_URI: url.replace('//', '//alice:s3cret-pw@') }, 3000);
    expect(inUri.ok).toBe(true);
    expect(formatChecks([inUri])).not.toContain('s3cret-pw');
  });

  it('only advises when the server does not answer: a closed port, or no reply within the timeout', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((done) => closed.close(done));
    const refused = await checkMlflow({ MLFLOW_TRACKING_URI: closedUrl, ...credentials }, 3000);
    expect(refused).toMatchObject({ ok: false, optional: true, detail: expect.stringMatching(/which does not answer: .*cannot reach .*ECONNREFUSED/) });
    expect(refused.fix).toMatch(/unset MLFLOW_TRACKING_URI .* `exp sync`/);

    // A server that accepts the connection but never replies: the check gives up after the timeout.
    const silent = createServer(() => {});
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    const started = Date.now();
    const hung = await checkMlflow({ MLFLOW_TRACKING_URI: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` }, 300);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(hung).toMatchObject({ ok: false, optional: true, detail: expect.stringContaining('no answer within 300 ms') });
    silent.closeAllConnections();
    silent.close();
  });

  it('fails on a tracking URI the REST client cannot use', async () => {
    const check = await checkMlflow({ MLFLOW_TRACKING_URI: 'file:///tmp/mlruns' }, 3000);
    expect(check).toMatchObject({ ok: false, detail: expect.stringMatching(/uses file:/), fix: expect.stringContaining('MLFLOW_') });
    expect(check.optional).toBeUndefined();
  });

  it('makes `exp doctor` exit 1 when the server refuses the credentials, and 0 when it answers', async () => {
    vi.stubEnv('MLFLOW_TRACKING_TOKEN', undefined);
    vi.stubEnv('MLFLOW_TRACKING_URI', url);
    vi.stubEnv('MLFLOW_TRACKING_USERNAME', 'alice');
    try {
      let out = '';
      vi.stubEnv('MLFLOW_TRACKING_PASSWORD', 'wrong-pw');
      expect(await main(['doctor'], { stdout: { write: (t: string) => (out += t) } })).toBe(1);
      expect(out).toMatch(/\nFAIL {2}tracking mlflow +MLFLOW_TRACKING_URI selects /);
      expect(out).not.toContain('wrong-pw');
      out = '';
      vi.stubEnv('MLFLOW_TRACKING_PASSWORD', 's3cret-pw');
      expect(await main(['doctor'], { stdout: { write: (t: string) => (out += t) } })).toBe(0);
      expect(out).toMatch(/\n ok {3}tracking mlflow +MLFLOW_TRACKING_URI selects MLflow: /);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
