// A worker thread starts as plain JavaScript; tsx's loader lets it run the TypeScript source
// (tests and `pnpm exp` run on source, no build step), then the real worker module is loaded.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
