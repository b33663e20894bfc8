import * as tf from '@tensorflow/tfjs';
import { didYouMean } from '../registry/registry.ts';
import {
  defaultLoaders,
  type BackendDetail,
  type BackendLoader,
  type BackendName,
  type BackendOptions,
} from './loaders.ts';

/** What an experiment's `backend:` may say. */
export type BackendRequest = 'auto' | BackendName;

export const BACKEND_REQUESTS: readonly BackendRequest[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface SkippedBackend {
  name: BackendName;
  why: string;
}

export interface BackendSelection {
  name: BackendName;
  /** One sentence: what was chosen and why, e.g. "auto: the best backend that loads". */
  reason: string;
  /** The better backends `auto` tried first, each with why it was passed over. */
  skipped: SkippedBackend[];
  detail: BackendDetail;
}

export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
  constructor(
    readonly requested: BackendRequest,
    readonly skipped: SkippedBackend[],
  ) {
    super(
      requested === 'auto'
        ? `no TF.js backend could be loaded: ${skipped.map((s) => `${s.name}: ${s.why}`).join('; ')}`
        : `backend '${requested}' is not available: ${skipped[0]?.why ?? 'unknown reason'}` +
            (requested !== 'cpu' ? " (use `backend: auto` to fall back to the best one that loads)" : ''),
    );
  }
}

export interface SelectOptions extends BackendOptions {
  /** Which loaders to try, best first. Tests pass fakes; everyone else takes the default. */
  loaders?: readonly BackendLoader[];
}

/**
 * Activates a TF.js backend. `auto` tries them best first (native GPU, native CPU, WebAssembly,
 * plain JavaScript) and takes the first that loads, logging its choice and why each better one
 * was skipped; a named backend is taken or refused with the reason (BackendUnavailableError).
 */
export async function selectBackend(
  request: BackendRequest,
  log: (message: string) => void,
  options: SelectOptions = {},
): Promise<BackendSelection> {
  const loaders = options.loaders ?? defaultLoaders;
  if (request !== 'auto' && !loaders.some((loader) => loader.name === request)) {
    const suggestion = didYouMean(request, [...BACKEND_REQUESTS]);
    throw new Error(
      `unknown backend '${request}'${suggestion ? ` (did you mean '${suggestion}'?)` : ''}; ` +
        `expected one of ${BACKEND_REQUESTS.join(', ')}`,
    );
  }
  const candidates = request === 'auto' ? loaders : loaders.filter((loader) => loader.name === request);
  const skipped: SkippedBackend[] = [];
  for (const loader of candidates) {
    const result = await loader.load(options);
    if (!result.ok) {
      skipped.push({ name: loader.name, why: result.why });
      continue;
    }
    const reason =
      request === 'auto'
        ? skipped.length === 0
          ? 'auto: the best backend, and it loaded'
          : `auto: the best backend that loaded (skipped ${skipped.map((s) => s.name).join(', ')})`
        : `requested by the config (backend: ${request})`;
    log(`backend: ${loader.name} - ${result.detail.summary}; ${reason}`);
    for (const s of skipped) log(`  skipped ${s.name}: ${s.why}`);
    return { name: loader.name, reason, skipped, detail: result.detail };
  }
  throw new BackendUnavailableError(request, skipped);
}

export interface BackendReport {
  name: BackendName;
  available: boolean;
  /** The detail's summary when available, the reason when not. */
  description: string;
  detail?: BackendDetail;
}

/**
 * Tries every backend in turn and reports which load, for `exp doctor`. It activates each one
 * while trying it, then re-activates whichever backend was active before (if any).
 */
export async function describeBackends(options: SelectOptions = {}): Promise<BackendReport[]> {
  const loaders = options.loaders ?? defaultLoaders;
  // Read the engine's field rather than tf.getBackend(), which would initialise a backend.
  const previous = (tf.engine() as unknown as { backendName?: string | null }).backendName ?? null;
  const reports: BackendReport[] = [];
  for (const loader of loaders) {
    const result = await loader.load(options);
    reports.push(
      result.ok
        ? { name: loader.name, available: true, description: result.detail.summary, detail: result.detail }
        : { name: loader.name, available: false, description: result.why },
    );
  }
  if (previous !== null && tf.findBackend(previous) !== null) await tf.setBackend(previous);
  return reports;
}
