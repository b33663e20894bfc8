// Sweeps across machines (docs/distributed.md): `@tessera/sweeps/queue`, a subpath of its own so
// that programs which never touch Redis do not load BullMQ and ioredis.
export { QueueExecutor, type QueueExecutorOptions } from './queue-executor.ts';
export { runQueueWorker, type QueueWorkerOptions } from './worker.ts';
export {
  runQueueSweepFile,
  runQueueSweep,
  acquireLease,
  syncState,
  sweepStatus,
  formatSweepStatus,
  SweepLeaseError,
  type QueueSweepOptions,
  type SweepStatus,
} from './controller.ts';
export { parseRedisUrl, describeQueue, QueueUrlError, QueueUnreachableError } from './connection.ts';
export { TrialTable, sweepKeys, QUEUE_NAME, type QueueTrial, type QueueTrialState, type TrialJob } from './table.ts';
