import { Worker } from 'node:worker_threads';

/**
 * Starts one of this folder's worker modules. From source (tests, `pnpm exp`) the worker needs
 * tsx to run TypeScript (boot.mjs); built (dist/), it is plain JavaScript. The worker is unref'd:
 * an idle worker must not keep a finished program alive (ref it while it holds a job).
 */
export function spawnWorker(module: 'batch-worker' | 'decode-worker'): Worker {
  const worker = import.meta.url.endsWith('.ts')
    ? new Worker(new URL('./boot.mjs', import.meta.url), { workerData: { entry: new URL(`./${module}.ts`, import.meta.url).href } })
    : new Worker(new URL(`./${module}.js`, import.meta.url));
  worker.unref();
  return worker;
}
