/**
 * Test helpers for any package that talks to MLflow (import from '@tessera/mlflow/testing'):
 * - `startMlflowServer()`: a real `mlflow server` on a free 127.0.0.1 port with a sqlite store
 *   and proxied artifacts in a temp folder; `stop()` kills its whole process group.
 * - `locateMlflowForTests()`: finds the binary; under CI=true a missing one is an error.
 * - `startFakeMlflow()`: a node:http stand-in that replays scripted (recorded) answers and
 *   records every request, for errors, retries and chunking without a Python server.
 * - `mlflowErrorFrom()`: the MlflowError a call fails with.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MlflowError } from './errors.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

// ---- the real server -------------------------------------------------------------------------

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

export interface MlflowForTests {
  binary: string | undefined;
  /** Why the tests will be skipped; undefined when the binary was found. */
  skipReason: string | undefined;
}

/**
 * For `describe.skipIf(!mlflow.binary)`. Locally a missing mlflow skips with a message; with
 * CI=true it throws, so a CI that forgot `scripts/setup-mlflow.sh` fails instead of going green.
 */
export function locateMlflowForTests(env: NodeJS.ProcessEnv = process.env): MlflowForTests {
  const binary = findMlflowBinary(env);
  if (binary) return { binary, skipReason: undefined };
  const where = env.MLFLOW_BIN
    ? `MLFLOW_BIN=${env.MLFLOW_BIN} is not an executable`
    : `no mlflow in $MLFLOW_BIN, ${join(REPO_ROOT, '.venv/bin/mlflow')} or PATH`;
  const reason = `${where}; run \`bash scripts/setup-mlflow.sh\` to install it`;
  if (isTruthy(env.CI)) throw new Error(`MLflow integration tests cannot run under CI: ${reason}`);
  console.warn(`[mlflow] skipping the tests against a real MLflow server: ${reason}`);
  return { binary: undefined, skipReason: reason };
}

export interface StartMlflowServerOptions {
  binary?: string;
  /** 'basic-auth' starts MLflow's auth app with a fresh admin user (see `admin`). */
  appName?: 'basic-auth';
  startupTimeoutMs?: number;
  /** Keep the temp folder (db, artifacts, log) after stop(), for debugging. */
  keepFiles?: boolean;
}

export interface MlflowServerHandle {
  uri: string;
  port: number;
  /** Temp folder holding mlflow.db, artifacts/ and server.log. */
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
  const dir = await mkdtemp(join(tmpdir(), 'mlflow-test-'));
  const artifactsDir = join(dir, 'artifacts');
  // The port is free when probed; another process could take it before mlflow binds, so retry.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(binary, dir, artifactsDir, await freePort(), options);
    } catch (error) {
      const inUse = error instanceof Error && /address already in use/i.test(error.message);
      if (!inUse || attempt >= 3) {
        if (!options.keepFiles) await rm(dir, { recursive: true, force: true });
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
      MLFLOW_TEST_PARENT_PID: String(process.pid),
      ...(options.keepFiles ? {} : { MLFLOW_TEST_REMOVE_DIR: dir }),
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
const parent = Number(process.env.MLFLOW_TEST_PARENT_PID);
const killAll = () => {
  const dir = process.env.MLFLOW_TEST_REMOVE_DIR;
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

async function freePort(): Promise<number> {
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

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** The MlflowError a call fails with; throws if it succeeds or fails with anything else. */
export async function mlflowErrorFrom(promise: Promise<unknown>): Promise<MlflowError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof MlflowError) return error;
    throw new Error(`expected an MlflowError, got: ${String(error)}`, { cause: error });
  }
  throw new Error('expected the call to fail with an MlflowError, but it succeeded');
}

// ---- the fake server -------------------------------------------------------------------------

export interface RecordedRequest {
  method: string;
  /** Path without the query, e.g. `/api/2.0/mlflow/runs/log-batch`. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Raw body bytes. */
  body: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

export interface FakeResponse {
  status?: number;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (e.g. an HTML error page). */
  text?: string;
  /** Sent as is, as application/octet-stream (an artifact). */
  bytes?: Uint8Array;
  /** Announce the whole body's Content-Length, send only this many bytes, then drop the connection. */
  cutAfter?: number;
  /** Send the body in pieces of `bytes`, one every `everyMs` (a slow link, or a stalled one). */
  pace?: { bytes: number; everyMs: number };
  headers?: Record<string, string>;
  /** Wait this long before answering (to trigger client timeouts). */
  delayMs?: number;
  /** Drop the connection without answering (a network error for the client). */
  drop?: boolean;
}

export type FakeHandler = FakeResponse | FakeResponse[] | ((request: RecordedRequest) => FakeResponse);

export interface FakeMlflow {
  uri: string;
  requests: RecordedRequest[];
  /** Requests to one route, e.g. `POST /api/2.0/mlflow/runs/log-batch`. */
  requestsTo(route: string): RecordedRequest[];
  /**
   * Scripts a route (`METHOD /path`): one answer for every call, a list answered in order (the
   * last one repeats), or a function of the request. Unscripted routes answer 404 like MLflow.
   */
  on(route: string, handler: FakeHandler): void;
  close(): Promise<void>;
}

export async function startFakeMlflow(routes: Record<string, FakeHandler> = {}): Promise<FakeMlflow> {
  const handlers = new Map<string, FakeHandler>(Object.entries(routes));
  const calls = new Map<string, number>();
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const body = Buffer.concat(chunks);
      let json: unknown;
      try {
        json = body.length > 0 ? JSON.parse(body.toString('utf8')) : undefined;
      } catch {
        json = undefined;
      }
      const request: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        body,
        json,
      };
      requests.push(request);
      const route = `${request.method} ${request.path}`;
      const handler = handlers.get(route);
      const index = calls.get(route) ?? 0;
      calls.set(route, index + 1);
      let answer: FakeResponse;
      if (handler === undefined) {
        answer = { status: 404, json: { error_code: 'ENDPOINT_NOT_FOUND', message: `No route for ${route} in the fake` } };
      } else if (typeof handler === 'function') {
        answer = handler(request);
      } else if (Array.isArray(handler)) {
        answer = handler[Math.min(index, handler.length - 1)] ?? { status: 200, json: {} };
      } else {
        answer = handler;
      }
      const send = () => {
        if (answer.drop) {
          req.socket.destroy();
          return;
        }
        const payload = answer.bytes ?? Buffer.from(answer.text ?? JSON.stringify(answer.json ?? {}));
        const type = answer.bytes ? 'application/octet-stream' : answer.text === undefined ? 'application/json' : 'text/html; charset=utf-8';
        res.writeHead(answer.status ?? 200, { 'Content-Type': type, 'Content-Length': String(payload.length), ...answer.headers });
        const { cutAfter, pace } = answer;
        if (cutAfter !== undefined) {
          res.write(payload.subarray(0, cutAfter), () => req.socket.destroy());
        } else if (pace !== undefined) {
          let offset = 0;
          const sendPiece = () => {
            if (res.destroyed) return;
            const piece = payload.subarray(offset, (offset += pace.bytes));
            if (offset >= payload.length) res.end(piece);
            else res.write(piece, () => setTimeout(sendPiece, pace.everyMs));
          };
          sendPiece();
        } else {
          res.end(payload);
        }
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const { port } = server.address() as AddressInfo;
  return {
    uri: `http://127.0.0.1:${port}`,
    requests,
    requestsTo: (route) => requests.filter((request) => `${request.method} ${request.path}` === route),
    on: (route, handler) => {
      handlers.set(route, handler);
      calls.delete(route);
    },
    close: () =>
      new Promise<void>((resolveClose) => {
        server.closeAllConnections();
        server.close(() => resolveClose());
      }),
  };
}
