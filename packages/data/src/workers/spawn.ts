import { Worker } from 'node:worker_threads';

/** Running from source (tests, `pnpm exp`: TypeScript under tsx), not built (dist/, JavaScript). */
const fromSource = import.meta.url.endsWith('.ts');

/**
 * Starts one of this folder's worker modules. From source the worker needs tsx to run
 * TypeScript (boot.mjs); built, it is plain JavaScript. The worker is unref'd: an idle worker
 * must not keep a finished program alive (ref it while it holds a job).
 */
export function spawnWorker(module: 'batch-worker' | 'decode-worker'): Worker {
  const worker = fromSource
    ? new Worker(new URL('./boot.mjs', import.meta.url), { workerData: { entry: new URL(`./${module}.ts`, import.meta.url).href } })
    : new Worker(new URL(`./${module}.js`, import.meta.url));
  worker.unref();
  return worker;
}

/**
 * Whether a worker can import this plugin module: JavaScript always; TypeScript only from source,
 * where boot.mjs registers tsx (built, the workers run plain JavaScript).
 */
export function workersCanLoad(plugin: string): boolean {
  return fromSource || !/\.[cm]?ts$/.test(plugin);
}
