// Against a REAL `mlflow server --app-name basic-auth` (its own file, so vitest starts this server
// in parallel with sync.test.ts's): a wrong token stops `exp run` before training with a clear
// 401 that never shows the token, and `exp sync` says the same.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import { readRunMeta } from '@tessera/core';
import { main } from '../main.ts';

const mlflow = locateMlflowForTests();
const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const SMOKE = join(ROOT, 'experiments', 'smoke.yaml');

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
  Object.assign(process.env, env);
  const out: string[] = [];
  const err: string[] = [];
  try {
    const code = await main(args, { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } });
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

describe.skipIf(!mlflow.binary)('exp run and exp sync against an MLflow server with logins', () => {
  let server: MlflowServerHandle;
  let runsDir: string;

  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary, appName: 'basic-auth' });
    runsDir = mkdtempSync(join(tmpdir(), 'tessera-auth-test-'));
  });

  afterAll(async () => {
    await server?.stop();
    if (runsDir) rmSync(runsDir, { recursive: true, force: true });
  });

  it('a wrong token: exit 1 before training, a clear 401 without the token; the local run says why', async () => {
    const token = `wrong-${randomBytes(12).toString('hex')}`;
    const env = { MLFLOW_TRACKING_URI: server.uri, MLFLOW_TRACKING_TOKEN: token, MLFLOW_EXPERIMENT_NAME: 'auth-smoke' };
    const run = await cli(['run', SMOKE, '--runs-dir', runsDir, '--epochs', '1'], env);
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/^exp run: .*401.*\n/);
    expect(run.err).toContain('a bearer token');
    expect(run.out).not.toMatch(/Epoch 1\//);
    expect(`${run.out}${run.err}`).not.toContain(token);
    const [id] = readdirSync(join(runsDir, 'smoke'));
    const dir = join(runsDir, 'smoke', id!);
    const meta = await readRunMeta(dir);
    expect(meta.status).toBe('FAILED');
    expect(meta.error).toMatch(/401/);
    for (const file of readdirSync(dir)) {
      if (file.endsWith('.json')) expect(readFileSync(join(dir, file), 'utf8'), file).not.toContain(token);
    }

    const sync = await cli(['sync', id!, '--runs-dir', runsDir], env);
    expect(sync.code).toBe(1);
    expect(sync.err).toMatch(/401/);
    expect(sync.err).not.toContain(token);

    // The right password works.
    const admin = server.admin!;
    const good = await cli(['sync', id!, '--runs-dir', runsDir], {
      MLFLOW_TRACKING_URI: server.uri,
      MLFLOW_TRACKING_USERNAME: admin.username,
      MLFLOW_TRACKING_PASSWORD: admin.password,
    });
    expect(good.code, good.err).toBe(0);
    expect(good.out).toMatch(new RegExp(`^${id} -> MLflow run [0-9a-f]{32} \\(created\\): sent .*status\\n$`));
  });
});
