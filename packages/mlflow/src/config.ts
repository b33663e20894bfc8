/**
 * Where the tracking server is and how to authenticate, from explicit options or from MLflow's
 * own environment variables. Secrets live only in private fields: they never show up in
 * `toString`, `JSON.stringify`, `util.inspect`, or any error message.
 */
import { inspect } from 'node:util';
import { MlflowError } from './errors.ts';

export type CredentialsInit = { username: string; password: string } | { token: string };

export class Credentials {
  readonly kind: 'basic' | 'bearer';
  /** Safe to print: the user name for basic auth, nothing for a token. */
  readonly username: string | undefined;
  readonly #authorization: string;

  constructor(init: CredentialsInit) {
    if ('token' in init) {
      if (!init.token) throw configError('the bearer token is empty');
      this.kind = 'bearer';
      this.username = undefined;
      this.#authorization = `Bearer ${init.token}`;
    } else {
      if (!init.username) throw configError('the basic-auth user name is empty');
      if (init.password === undefined || init.password === '') {
        throw configError(`basic auth for user "${init.username}" has no password`);
      }
      this.kind = 'basic';
      this.username = init.username;
      this.#authorization = `Basic ${Buffer.from(`${init.username}:${init.password}`).toString('base64')}`;
    }
  }

  /** The `Authorization` header value; only the HTTP transport should call this. */
  authorizationHeader(): string {
    return this.#authorization;
  }

  describe(): string {
    return this.kind === 'basic' ? `basic auth as "${this.username}"` : 'a bearer token';
  }

  toString(): string {
    return `Credentials(${this.describe()})`;
  }

  toJSON(): { kind: string; username?: string } {
    return this.username === undefined ? { kind: this.kind } : { kind: this.kind, username: this.username };
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

export interface TrackingTarget {
  /** The server's base URL with any user info removed, e.g. `http://127.0.0.1:5000`. */
  baseUrl: string;
  credentials: Credentials | undefined;
}

/**
 * Parses a tracking URI for the REST API. `http://user:pass@host` is accepted (as MLflow does)
 * and turned into basic auth, because fetch refuses URLs that carry credentials.
 */
export function parseTrackingUri(uri: string, credentials?: Credentials): TrackingTarget {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw configError(
      `tracking URI "${redactUserInfo(uri)}" is not a URL; expected http(s)://host:port of an MLflow server`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw configError(
      `tracking URI "${redactUserInfo(uri)}" uses ${url.protocol}, which this REST client cannot reach; ` +
        'expected http(s)://host:port of a running `mlflow server` (file:, sqlite: and databricks ' +
        'stores need the Python client)',
    );
  }
  let fromUri: Credentials | undefined;
  if (url.username) {
    fromUri = new Credentials({
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    });
  }
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  const baseUrl = url.toString().replace(/\/+$/, '');
  return { baseUrl, credentials: credentials ?? fromUri };
}

export interface MlflowEnvConfig {
  trackingUri: string | undefined;
  experimentName: string | undefined;
  credentials: Credentials | undefined;
  /** From MLFLOW_HTTP_REQUEST_TIMEOUT (seconds, as in MLflow's Python client). */
  timeoutMs: number | undefined;
  /** From MLFLOW_HTTP_REQUEST_MAX_RETRIES. */
  maxRetries: number | undefined;
}

/**
 * Reads MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME and the auth variables. Like MLflow's
 * Python client, a user name + password (basic) wins over a token (bearer).
 */
export function mlflowConfigFromEnv(env: NodeJS.ProcessEnv = process.env): MlflowEnvConfig {
  const username = nonEmpty(env.MLFLOW_TRACKING_USERNAME);
  const password = nonEmpty(env.MLFLOW_TRACKING_PASSWORD);
  const token = nonEmpty(env.MLFLOW_TRACKING_TOKEN);
  let credentials: Credentials | undefined;
  if (username !== undefined || password !== undefined) {
    if (username === undefined) throw configError('MLFLOW_TRACKING_PASSWORD is set but MLFLOW_TRACKING_USERNAME is not');
    if (password === undefined) throw configError('MLFLOW_TRACKING_USERNAME is set but MLFLOW_TRACKING_PASSWORD is not');
    credentials = new Credentials({ username, password });
  } else if (token !== undefined) {
    credentials = new Credentials({ token });
  }
  const timeoutSeconds = numberFrom(env, 'MLFLOW_HTTP_REQUEST_TIMEOUT', { min: Number.MIN_VALUE, integer: false });
  return {
    trackingUri: nonEmpty(env.MLFLOW_TRACKING_URI),
    experimentName: nonEmpty(env.MLFLOW_EXPERIMENT_NAME),
    credentials,
    timeoutMs: timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000,
    maxRetries: numberFrom(env, 'MLFLOW_HTTP_REQUEST_MAX_RETRIES', { min: 0, integer: true }),
  };
}

function numberFrom(env: NodeJS.ProcessEnv, name: string, rule: { min: number; integer: boolean }): number | undefined {
  const text = nonEmpty(env[name]);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < rule.min || (rule.integer && !Number.isInteger(value))) {
    const expected = rule.integer ? 'a non-negative integer' : 'a positive number of seconds';
    throw configError(`${name}=${JSON.stringify(text)}: expected ${expected}`);
  }
  return value;
}

export function redactUserInfo(uri: string): string {
  return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function configError(message: string): MlflowError {
  return new MlflowError({ message: `MLflow configuration: ${message}`, errorCode: 'INVALID_CONFIGURATION' });
}
