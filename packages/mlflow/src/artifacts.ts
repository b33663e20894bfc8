/**
 * Artifacts go through the tracking server's proxy (`mlflow server --serve-artifacts`, the
 * default since MLflow 2.0): a run whose artifact URI is `mlflow-artifacts:/<exp>/<run>/artifacts`
 * is reached at `/api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>` (PUT uploads,
 * GET downloads) and listed with `GET /api/2.0/mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts/<dir>`.
 * Any other root (file:, s3:, gs:, a bare path) lives where only the Python client can write.
 */
import { MlflowError, invalidParameter } from './errors.ts';

export const ARTIFACTS_API = '/api/2.0/mlflow-artifacts/artifacts';

export interface ArtifactLocation {
  /** The server to talk to: the tracking server, or the host an `mlflow-artifacts://host` URI names. */
  baseUrl: string;
  /** The run's artifact root relative to the server's artifact destination, e.g. `1/<run>/artifacts`. */
  root: string;
}

export function resolveArtifactRoot(artifactUri: string, trackingBaseUrl: string, runId: string): ArtifactLocation {
  const match = /^mlflow-artifacts:(?:\/\/([^/]+))?(\/.*)?$/.exec(artifactUri);
  if (!match) {
    throw new MlflowError({
      errorCode: 'UNSUPPORTED_ARTIFACT_URI',
      message:
        `MLflow run ${runId} stores its artifacts at "${artifactUri}", which this client cannot reach: ` +
        'it only talks to the tracking server. Start the server with --serve-artifacts ' +
        '(and --artifacts-destination for the storage) and log to an experiment created after that ' +
        '(its artifact location must start with mlflow-artifacts:/).',
    });
  }
  const [, host, path = '/'] = match;
  let baseUrl = trackingBaseUrl;
  if (host) {
    const tracking = new URL(trackingBaseUrl);
    baseUrl = `${tracking.protocol}//${host}`;
  }
  return { baseUrl, root: path.replace(/^\/+|\/+$/g, '') };
}

/** Checks a run-relative artifact path and returns it in canonical form ('' = the root). */
export function normalizeArtifactPath(path: string | undefined, { allowRoot }: { allowRoot: boolean }): string {
  const trimmed = (path ?? '').replace(/^\/+|\/+$/g, '');
  const segments = trimmed === '' ? [] : trimmed.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw invalidParameter(`artifact path "${path}" must not contain empty, "." or ".." segments`);
  }
  if (!allowRoot && segments.length === 0) throw invalidParameter('an artifact file needs a path, e.g. "model/weights.bin"');
  return segments.join('/');
}

export function artifactUrlPath(location: ArtifactLocation, path: string): string {
  const full = [location.root, path].filter((part) => part !== '').join('/');
  return `${ARTIFACTS_API}/${full.split('/').map(encodeURIComponent).join('/')}`;
}
