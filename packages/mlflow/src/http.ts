/**
 * The HTTP layer: one request = one or more attempts with a per-attempt timeout, retried with
 * exponential backoff and jitter only when that is safe, and every failure turned into an
 * MlflowError that names the endpoint but carries no credential.
 */
import { open } from 'node:fs/promises';
import type { Credentials } from './config.ts';
import { MlflowError } from './errors.ts';

export interface RetryPolicy {
  /** Retries after the first attempt (so at most maxRetries + 1 requests). */
  maxRetries: number;
  /** The first backoff; each retry doubles it, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 5, baseDelayMs: 500, maxDelayMs: 20_000 };
export const DEFAULT_TIMEOUT_MS = 30_000;

export interface RetryEvent {
  endpoint: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  error: MlflowError;
}

export interface TransportOptions {
  baseUrl: string;
  credentials?: Credentials;
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Injection points for tests; default to the globals. */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onRetry?: (event: RetryEvent) => void;
}

/**
 * - `idempotent`: repeating it is harmless (reads, searches, log-batch, set-tag, ...); retried on
 *   429, 5xx, network errors and timeouts.
 * - `once`: must not run twice (creating things); retried only on 429, when the server refused
 *   it outright. After an ambiguous failure `recover` may look for its effect: a value found is
 *   returned as the result, `undefined` means it did not happen and the call is retried.
 */
export type RetryMode = 'idempotent' | 'once';

export interface RequestSpec<T> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Absolute path from the server root, e.g. `/api/2.0/mlflow/runs/get`. */
  path: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  /**
   * Bytes, or a Blob such as `fs.openAsBlob(path)`: a file-backed Blob is streamed from disk
   * with its Content-Length, and every attempt sends it again from the start.
   */
  body?: Uint8Array | Blob;
  retry: RetryMode;
  recover?: (error: MlflowError) => Promise<T | undefined>;
  /**
   * How a successful answer is returned: parsed JSON (default), the bytes, or `{ file }`: streamed
   * into that file (created or truncated by each attempt; the caller removes it after a failure).
   */
  response?: 'json' | 'bytes' | { file: string };
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Overrides the base URL (artifact URIs may name another host). */
  baseUrl?: string;
}

export class HttpTransport {
  readonly baseUrl: string;
  readonly #credentials: Credentials | undefined;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;

  constructor(options: TransportOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#credentials = options.credentials;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#random = options.random ?? Math.random;
    this.#onRetry = options.onRetry;
  }

  get credentials(): Credentials | undefined {
    return this.#credentials;
  }

  async request<T>(spec: RequestSpec<T>): Promise<T> {
    const endpoint = `${spec.method} ${spec.path}`;
    for (let attempt = 1; ; attempt++) {
      let error: MlflowError;
      try {
        return (await this.#attempt(spec, endpoint, attempt)) as T;
      } catch (caught) {
        if (!(caught instanceof MlflowError)) throw caught;
        error = caught;
      }
      if (!error.transient) throw error;
      if (spec.retry === 'once' && error.ambiguous) {
        if (!spec.recover) throw error;
        // Even after the last attempt: the call may have succeeded, and then it did not fail.
        const recovered = await spec.recover(error);
        if (recovered !== undefined) return recovered;
      }
      if (attempt > this.#retry.maxRetries) throw error;
      const delayMs = this.#backoff(attempt, error);
      this.#onRetry?.({ endpoint, attempt, delayMs, error });
      await this.#sleep(delayMs);
    }
  }

  /** Equal jitter: half the exponential delay plus a random half, so clients spread out. */
  #backoff(attempt: number, error: MlflowError): number {
    const exponential = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1));
    const jittered = exponential / 2 + (this.#random() * exponential) / 2;
    const retryAfter = error.retryAfterMs;
    return Math.round(retryAfter !== undefined ? Math.min(this.#retry.maxDelayMs, Math.max(retryAfter, jittered)) : jittered);
  }

  async #attempt(spec: RequestSpec<unknown>, endpoint: string, attempt: number): Promise<unknown> {
    const url = new URL((spec.baseUrl ?? this.baseUrl) + spec.path);
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { 'User-Agent': 'tessera-mlflow-client' };
    if (this.#credentials) headers.Authorization = this.#credentials.authorizationHeader();
    const timeoutMs = spec.timeoutMs ?? this.#timeoutMs;
    // A file's limit is on silence, not on the whole transfer: a large checkpoint on a slow link
    // takes longer than any sensible request limit, yet a stalled one must still fail.
    const transfersFile = spec.body instanceof Blob || typeof spec.response === 'object';
    const timeout = idleTimeout(timeoutMs);
    const signal = spec.signal ? AbortSignal.any([spec.signal, timeout.signal]) : timeout.signal;
    let body: string | Uint8Array | ReadableStream<Uint8Array> | undefined;
    let streamed = {};
    if (spec.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(spec.json);
    } else if (spec.body instanceof Blob) {
      headers['Content-Type'] = 'application/octet-stream';
      headers['Content-Length'] = String(spec.body.size);
      // A fresh stream per attempt: a retry sends the whole file again. Each chunk read is one
      // the socket took (fetch honours backpressure), so it counts as progress.
      body = spec.body.stream().pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            timeout.progress();
            controller.enqueue(chunk);
          },
        }),
      );
      // fetch clones a request that may follow a redirect or answer an auth challenge, and the
      // clone tees the body: the branch never sent would keep every chunk, the whole file in
      // memory. Without a window and with redirects refused, undici sends the body as it is.
      streamed = { duplex: 'half', window: null, redirect: 'error' };
    } else if (spec.body !== undefined) {
      headers['Content-Type'] = 'application/octet-stream';
      body = spec.body;
    }
    const fail = (init: { message: string; errorCode: string; status?: number; retryAfterMs?: number; cause?: unknown }) =>
      new MlflowError({ ...init, message: `MLflow ${endpoint}: ${init.message}`, endpoint, attempts: attempt });

    const transferFailure = (cause: unknown): unknown => {
      if (cause instanceof LocalWriteError) return fail({ message: cause.message, errorCode: 'LOCAL_FILE_ERROR', cause: cause.cause });
      const inner = (cause as { cause?: unknown } | undefined)?.cause;
      if (spec.body instanceof Blob && inner instanceof Error) {
        // A file-backed Blob cannot be read once its file changed after it was opened.
        if (inner.name === 'NotReadableError') {
          const message = 'the file being uploaded could not be read to the end: it changed or was removed during the upload';
          return fail({ message, errorCode: 'LOCAL_FILE_ERROR', cause });
        }
        if (inner.message === 'unexpected redirect') {
          const message = `the server answered with a redirect, which a file upload does not follow; use the address it redirects to instead of ${this.baseUrl}`;
          return fail({ message, errorCode: 'BAD_RESPONSE', cause });
        }
      }
      if (spec.signal?.aborted) return fail({ message: 'aborted by the caller', errorCode: 'ABORTED' });
      if (timeout.signal.aborted) {
        const message = transfersFile ? `no progress for ${timeoutMs} ms (${this.baseUrl})` : `no answer within ${timeoutMs} ms (${this.baseUrl})`;
        return fail({ message, errorCode: 'TIMEOUT' });
      }
      return fail({ message: `cannot reach ${this.baseUrl}: ${describeNetworkError(cause)}`, errorCode: 'NETWORK_ERROR', cause });
    };
    const toFile = typeof spec.response === 'object' ? spec.response.file : undefined;

    let response: Response;
    let payload: Uint8Array | undefined;
    try {
      response = await this.#fetch(url, { method: spec.method, headers, body, signal, ...streamed });
      if (toFile !== undefined && response.ok) await saveBody(response, toFile, timeout.progress);
      else payload = new Uint8Array(await response.arrayBuffer());
    } catch (cause) {
      throw transferFailure(cause);
    } finally {
      timeout.dispose();
    }

    if (response.ok) {
      if (payload === undefined) return undefined;
      if (spec.response === 'bytes') return payload;
      const text = new TextDecoder().decode(payload);
      if (text.trim() === '') return {};
      try {
        return JSON.parse(text);
      } catch {
        throw fail({ message: `expected JSON, got "${snippet(text)}"`, errorCode: 'BAD_RESPONSE', status: response.status });
      }
    }

    const text = new TextDecoder().decode(payload ?? new Uint8Array());
    const parsed = parseErrorBody(text);
    const errorCode = parsed?.errorCode ?? codeForStatus(response.status);
    let message = `${response.status} ${errorCode}: ${parsed?.message ?? (snippet(text) || response.statusText)}`;
    if (response.status === 401) {
      message += this.#credentials
        ? ` (sent ${this.#credentials.describe()}; check MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN)`
        : ' (no credentials were sent; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN)';
    }
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    throw fail({ message, errorCode, status: response.status, retryAfterMs });
  }
}

/** A failure to write the local file: not the server's fault, so never retried. */
class LocalWriteError extends Error {
  constructor(file: string, cause: unknown) {
    super(`cannot write ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'LocalWriteError';
  }
}

/** Aborts its signal after `ms` without progress; `progress()` starts the wait again. */
function idleTimeout(ms: number): { signal: AbortSignal; progress: () => void; dispose: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no progress for ${ms} ms`, 'TimeoutError')), ms);
  timer.unref();
  return { signal: controller.signal, progress: () => timer.refresh(), dispose: () => clearTimeout(timer) };
}

/** Writes the answer's body to `file` chunk by chunk as it arrives. */
async function saveBody(response: Response, file: string, progress: () => void): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'w');
  } catch (cause) {
    throw new LocalWriteError(file, cause);
  }
  try {
    if (response.body === null) return;
    for await (const chunk of response.body) {
      progress();
      try {
        await handle.write(chunk);
      } catch (cause) {
        throw new LocalWriteError(file, cause);
      }
    }
  } finally {
    await handle.close();
  }
}

function parseErrorBody(text: string): { errorCode?: string; message?: string } | undefined {
  try {
    const body = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (typeof body !== 'object' || body === null) return undefined;
    return {
      errorCode: typeof body.error_code === 'string' ? body.error_code : undefined,
      message: typeof body.message === 'string' ? snippet(body.message, 1000) : undefined,
    };
  } catch {
    return undefined;
  }
}

function codeForStatus(status: number): string {
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'ENDPOINT_NOT_FOUND';
  if (status === 429) return 'REQUEST_LIMIT_EXCEEDED';
  if (status === 503) return 'TEMPORARILY_UNAVAILABLE';
  if (status >= 500) return 'INTERNAL_ERROR';
  return 'BAD_REQUEST';
}

function parseRetryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function describeNetworkError(cause: unknown): string {
  // undici wraps the socket error (ECONNREFUSED, ECONNRESET...) as `cause` of "fetch failed".
  const inner = (cause as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  if (inner?.code) return inner.code;
  if (inner?.message) return inner.message;
  return cause instanceof Error ? cause.message : String(cause);
}

/** A short single-line excerpt: error pages can be whole HTML documents or SQL dumps. */
function snippet(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}
