// The test helpers themselves: finding mlflow, failing loudly under CI, and stop() killing the
// server's whole process group (checked with a stand-in "mlflow" that forks a child).
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { findMlflowBinary, locateMlflowForTests, startMlflowServer } from './testing.ts';

let dir: string;
let standIn: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mlflow-helper-'));
  standIn = join(dir, 'mlflow');
  // Answers /health on --port like `mlflow server`, and leaves a grandchild in its process group.
  await writeFile(
    standIn,
    [
      '#!/bin/sh',
      `sleep 300 & echo $! > ${join(dir, 'grandchild.pid')}`,
      'port=$(echo "$@" | sed -E "s/.*--port ([0-9]+).*/\\1/")',
      `exec "${process.execPath}" -e "require('http').createServer((q,s)=>s.end('OK')).listen($port,'127.0.0.1')"`,
      '',
    ].join('\n'),
  );
  await chmod(standIn, 0o755);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// A killed process whose parent is gone may linger as a zombie until init reaps it.
const alive = async (pid: number) => {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
};

describe('findMlflowBinary / locateMlflowForTests', () => {
  it('prefers $MLFLOW_BIN, then PATH', () => {
    expect(findMlflowBinary({ MLFLOW_BIN: standIn })).toBe(standIn);
    expect(findMlflowBinary({ MLFLOW_BIN: join(dir, 'missing') })).toBeUndefined();
  });

  it('skips with a message locally but throws under CI when mlflow is missing', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const missing = { MLFLOW_BIN: join(dir, 'missing') };
    const local = locateMlflowForTests(missing);
    expect(local.binary).toBeUndefined();
    expect(local.skipReason).toContain('scripts/setup-mlflow.sh');
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('skipping the tests against a real MLflow server'));
    expect(() => locateMlflowForTests({ ...missing, CI: 'true' })).toThrow(/MLflow integration tests cannot run under CI: .*is not an executable/);
    expect(locateMlflowForTests({ MLFLOW_BIN: standIn, CI: 'true' }).binary).toBe(standIn);
    warn.mockRestore();
  });
});

describe('startMlflowServer', () => {
  it('waits for /health and stop() kills the whole process group and removes its folder', async () => {
    const server = await startMlflowServer({ binary: standIn, startupTimeoutMs: 30_000 });
    expect(server.uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`${server.uri}/health`)).text()).toBe('OK');
    const grandchild = Number(await readFile(join(dir, 'grandchild.pid'), 'utf8'));
    expect(await alive(grandchild)).toBe(true);
    await server.stop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await alive(grandchild)).toBe(false);
    await expect(fetch(`${server.uri}/health`)).rejects.toThrow();
    await expect(stat(server.dir)).rejects.toThrow(/ENOENT/);
  });

  it('reports a server that dies on startup with its output', async () => {
    const broken = join(dir, 'broken-mlflow');
    await writeFile(broken, '#!/bin/sh\necho "ImportError: no module named flask" >&2\nexit 3\n');
    await chmod(broken, 0o755);
    await expect(startMlflowServer({ binary: broken })).rejects.toThrow(/exited with code 3 before it was ready:\n.*ImportError: no module named flask/s);
  });
});

describe('startMlflowServer when the test process dies without stop()', () => {
  it('has the guardian kill the server group within a few seconds', async () => {
    const script = join(dir, 'dies.mts');
    const uriFile = join(dir, 'uri.txt');
    const testing = fileURLToPath(new URL('./testing.ts', import.meta.url));
    await writeFile(
      script,
      [
        `import { writeFileSync } from 'node:fs';`,
        `import { startMlflowServer } from ${JSON.stringify(testing)};`,
        `const server = await startMlflowServer({ binary: ${JSON.stringify(standIn)} });`,
        // Synchronously: console output to a pipe could be lost to the SIGKILL below.
        `writeFileSync(${JSON.stringify(uriFile)}, server.uri + '\\n' + server.dir);`,
        // SIGKILL: no exit handlers, no afterAll; only the guardian can clean up.
        `process.kill(process.pid, 'SIGKILL');`,
      ].join('\n'),
    );
    const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
    const { stderr } = await run(tsx, [script]);
    const [uri, serverDir] = (await readFile(uriFile, 'utf8').catch(() => `no URI written; stderr: ${stderr}`)).split('\n');
    expect(uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const grandchild = Number(await readFile(join(dir, 'grandchild.pid'), 'utf8'));
    let dead = false;
    for (let i = 0; i < 50 && !dead; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      dead = !(await alive(grandchild));
    }
    expect(dead).toBe(true);
    await expect(fetch(`${uri}/health`)).rejects.toThrow();
    expect(stderr).toBe('');
    await expect(stat(serverDir!)).rejects.toThrow(/ENOENT/);
    expect(serverDir).toMatch(/mlflow-test-/);
  });
});

function run(command: string, args: string[]): Promise<{ stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 60_000 }, (_error, _stdout, stderr) => resolve({ stderr }));
  });
}
