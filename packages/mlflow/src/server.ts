/**
 * Starts a real `mlflow server` (the Python package, installed by scripts/setup-mlflow.sh) on
 * 127.0.0.1 with a sqlite store and proxied artifacts: `exp ui` runs one on the run store's
 * `runs/.mlflow/`, and tests one in a temp folder. The server leads its own process group, and a
 * small guardian kills that group when this process dies without calling stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

/** $MLFLOW_BIN, else <repo>/.venv/bin/mlflow, else `mlflow` on PATH; undefined if none. */
export function findMlflowBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.MLFLOW_BIN) return isExecutable(env.MLFLOW_BIN) ? env.MLFLOW_BIN : undefined;
  const venv = join(REPO_ROOT, '.venv', 'bin', 'mlflow');
  if (isExecutable(venv)) return venv;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'mlflow'))) return join(dir, 'mlflow');
  }
  return undefined;
}

export interface StartMlflowServerOptions {
  binary?: string;
  /** 'basic-auth' starts MLflow's auth app with a fresh admin user (see `admin`). */
  appName?: 'basic-auth';
  startupTimeoutMs?: number;
  /** Keep the temp folder (db, artifacts, log) after stop(), for debugging. */
  keepFiles?: boolean;
  /**
   * A folder of its own for the store (mlflow.db, artifacts/), kept after stop() (exp ui's
   * `runs/.mlflow/`); default a fresh temp folder, removed by stop().
   */
  dir?: string;
  /** The port to listen on (default: a free one). */
  port?: number;
}

export interface MlflowServerHandle {
  uri: string;
  port: number;
  /** The folder holding mlflow.db and artifacts/ (a temp folder unless options.dir). */
  dir: string;
  artifactsDir: string;
  /** The admin account of a basic-auth server. */
  admin: { username: string; password: string } | undefined;
  /** The last lines the server printed. */
  log(): string;
  /** The server's process group (the guardian leads it): `process.kill(-pgid, 'SIGSTOP')` freezes it. */
  pgid: number;
  stop(): Promise<void>;
}

export async function startMlflowServer(options: StartMlflowServerOptions = {}): Promise<MlflowServerHandle> {
  const binary = options.binary ?? findMlflowBinary();
  if (!binary) throw new Error('startMlflowServer: mlflow not found; run `bash scripts/setup-mlflow.sh`');
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'mlflow-test-')));
  if (options.dir) await mkdir(dir, { recursive: true });
  // A folder the caller named is the caller's: it outlives the server.
  const keepFiles = options.keepFiles || options.dir !== undefined;
  const artifactsDir = join(dir, 'artifacts');
  // The port is free when probed; another process could take it before mlflow binds, so retry.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(binary, dir, artifactsDir, options.port ?? (await freePort()), { ...options, keepFiles });
    } catch (error) {
      const inUse = error instanceof Error && /address already in use/i.test(error.message);
      if (!inUse || attempt >= 3 || options.port !== undefined) {
        if (!keepFiles) await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
}

async function launch(
  binary: string,
  dir: string,
  artifactsDir: string,
  port: number,
  options: StartMlflowServerOptions,
): Promise<MlflowServerHandle> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // MLflow 3 otherwise starts seven background job consumers: heavy, and unused by tests.
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false',
    PYTHONUNBUFFERED: '1',
  };
  let admin: MlflowServerHandle['admin'];
  const args = [
    'server',
    '--host', '127.0.0.1',
    '--port', String(port),
    '--workers', '1',
    '--backend-store-uri', `sqlite:///${join(dir, 'mlflow.db')}`,
    '--serve-artifacts',
    '--artifacts-destination', artifactsDir,
  ];
  if (options.appName === 'basic-auth') {
    admin = { username: 'admin', password: randomBytes(12).toString('hex') };
    const config = join(dir, 'basic_auth.ini');
    await writeFile(
      config,
      [
        '[mlflow]',
        'default_permission = READ',
        `database_uri = sqlite:///${join(dir, 'auth.db')}`,
        `admin_username = ${admin.username}`,
        `admin_password = ${admin.password}`,
        'authorization_function = mlflow.server.auth:authenticate_request_basic_auth',
        '',
      ].join('\n'),
    );
    env.MLFLOW_AUTH_CONFIG_PATH = config;
    env.MLFLOW_FLASK_SERVER_SECRET_KEY = randomBytes(16).toString('hex');
    args.push('--app-name', 'basic-auth');
  }

  // detached: the server gets its own process group, so stop() reaches its workers too. A small
  // node guardian leads the group and kills it if this process dies without calling stop().
  const child = spawn(process.execPath, ['-e', GUARDIAN, binary, ...args], {
    cwd: dir,
    env: {
      ...env,
      TESSERA_SERVER_PARENT_PID: String(process.pid),
      ...(options.keepFiles ? {} : { TESSERA_SERVER_REMOVE_DIR: dir }),
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 400) output.splice(0, output.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const log = () => output.join('').split('\n').slice(-60).join('\n');
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const killOnExit = () => killGroup(child, 'SIGKILL');
  process.once('exit', killOnExit);

  const uri = `http://127.0.0.1:${port}`;
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child, 'SIGTERM');
      const stopped = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!stopped) {
        killGroup(child, 'SIGKILL');
        await exited;
      }
    }
    // Workers may outlive the leader briefly; the group kill above reaches them, this mops up.
    killGroup(child, 'SIGKILL');
    if (!options.keepFiles) await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startupTimeoutMs ?? 120_000);
  let exitCode: number | null | undefined;
  void exited.then((code) => {
    exitCode = code;
  });
  while (true) {
    if (exitCode !== undefined) {
      process.removeListener('exit', killOnExit);
      throw new Error(`mlflow server exited with code ${exitCode} before it was ready:\n${log()}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`mlflow server did not answer ${uri}/health within ${options.startupTimeoutMs ?? 120_000} ms:\n${log()}`);
    }
    try {
      const response = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  return { uri, port, dir, artifactsDir, admin, log, stop, pgid: child.pid! };
}

const GUARDIAN = `
const { spawn } = require('node:child_process');
const server = spawn(process.argv[1], process.argv.slice(2), { stdio: 'inherit' });
const parent = Number(process.env.TESSERA_SERVER_PARENT_PID);
const killAll = () => {
  const dir = process.env.TESSERA_SERVER_REMOVE_DIR;
  if (dir) { try { require('node:fs').rmSync(dir, { recursive: true, force: true }); } catch {} }
  try { process.kill(0, 'SIGKILL'); } catch {}
};
setInterval(() => { try { process.kill(parent, 0); } catch { killAll(); } }, 1000).unref();
server.on('error', (error) => { console.error(String(error)); process.exit(127); });
server.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
`;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}

/** A port nothing listens on right now (127.0.0.1). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolveClose) => server.close(resolveClose));
  return port;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return existsSync(path);
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

