/**
 * Test helpers for any package that talks to MLflow (import from '@tessera/mlflow/testing'):
 * - `startMlflowServer()`: a real `mlflow server` on a free 127.0.0.1 port with a sqlite store
 *   and proxied artifacts in a temp folder; `stop()` kills its whole process group.
 * - `locateMlflowForTests()`: finds the binary; under CI=true a missing one is an error.
 * - `startFakeMlflow()`: a node:http stand-in that replays scripted (recorded) answers and
 *   records every request, for errors, retries and chunking without a Python server.
 * - `mlflowErrorFrom()`: the MlflowError a call fails with.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MlflowError } from './errors.ts';
import { findMlflowBinary } from './server.ts';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

// ---- the real server (the launcher lives in server.ts; exp ui uses it too) ----------------

export { findMlflowBinary, startMlflowServer, type MlflowServerHandle, type StartMlflowServerOptions } from './server.ts';

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

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}
