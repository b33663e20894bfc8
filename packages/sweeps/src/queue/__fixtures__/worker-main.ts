// A queue worker process for the tests: `node --import tsx worker-main.ts`, configured by
// TEST_WORKER (JSON: QueueWorkerOptions without command, log, signal); trials run fake-exp.mjs.
// SIGINT/SIGTERM shut it down the way `exp worker` does.
import { join } from 'node:path';
import { runQueueWorker, type QueueWorkerOptions } from '../worker.ts';

const options = JSON.parse(process.env.TEST_WORKER!) as Omit<QueueWorkerOptions, 'command'>;
const controller = new AbortController();
process.on('SIGINT', () => controller.abort());
process.on('SIGTERM', () => controller.abort());
await runQueueWorker({
  ...options,
  command: [process.execPath, join(import.meta.dirname, 'fake-exp.mjs')],
  log: (line) => console.log(`${new Date().toISOString()} ${line}`),
  signal: controller.signal,
});
