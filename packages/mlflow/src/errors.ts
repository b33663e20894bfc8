/**
 * One error type for everything that goes wrong talking to MLflow: the server's answer (HTTP
 * status + MLflow `error_code`), a network failure or timeout, and input this client refuses
 * before sending. It names the endpoint (method and path) but never a credential.
 */

/** Codes this client uses where the server gave none (MLflow's own codes pass through). */
export type ClientErrorCode =
  | 'NETWORK_ERROR'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'INVALID_PARAMETER_VALUE'
  | 'INVALID_CONFIGURATION'
  | 'UNSUPPORTED_ARTIFACT_URI'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'ENDPOINT_NOT_FOUND'
  | 'REQUEST_LIMIT_EXCEEDED'
  | 'TEMPORARILY_UNAVAILABLE'
  | 'INTERNAL_ERROR'
  | 'BAD_RESPONSE'
  /** The local file an artifact is streamed from or to could not be read or written (not retried). */
  | 'LOCAL_FILE_ERROR';

export interface MlflowErrorInit {
  message: string;
  /** MLflow's `error_code` (RESOURCE_DOES_NOT_EXIST, ...) or one of {@link ClientErrorCode}. */
  errorCode: string;
  /** HTTP status when the server answered; undefined for network errors and client checks. */
  status?: number;
  /** `METHOD /path` of the call, without host, query or credentials. */
  endpoint?: string;
  /** How many requests were sent before giving up (0 when refused before sending). */
  attempts?: number;
  /** The server's Retry-After, in milliseconds, when it sent one. */
  retryAfterMs?: number;
  cause?: unknown;
}

const TRANSIENT_STATUSES = new Set([429, 500, 502, 503, 504]);

export class MlflowError extends Error {
  readonly errorCode: string;
  readonly status: number | undefined;
  readonly endpoint: string | undefined;
  readonly attempts: number;
  readonly retryAfterMs: number | undefined;

  constructor(init: MlflowErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'MlflowError';
    this.errorCode = init.errorCode;
    this.status = init.status;
    this.endpoint = init.endpoint;
    this.attempts = init.attempts ?? 0;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** The failure may go away by itself: rate limiting, a server error, the network, a timeout. */
  get transient(): boolean {
    if (this.status !== undefined) return TRANSIENT_STATUSES.has(this.status);
    return this.errorCode === 'NETWORK_ERROR' || this.errorCode === 'TIMEOUT';
  }

  /**
   * The request may have taken effect although no success came back (a 5xx, a dropped
   * connection, a timeout). A 429 is not ambiguous: the server refused before doing anything.
   */
  get ambiguous(): boolean {
    return this.transient && this.status !== 429;
  }
}

export function isMlflowError(error: unknown, errorCode?: string): error is MlflowError {
  return error instanceof MlflowError && (errorCode === undefined || error.errorCode === errorCode);
}

/** A client-side refusal: bad input caught before anything is sent. */
export function invalidParameter(message: string, endpoint?: string): MlflowError {
  return new MlflowError({ message, errorCode: 'INVALID_PARAMETER_VALUE', endpoint });
}
