import { defineCommand, UsageError, type CommandContext } from '../command.ts';
import { abortOnSignals } from '../interrupt.ts';
import { expCommand } from '../self.ts';

/** The `--queue` URL (or $TESSERA_QUEUE), checked; credentials never echoed. */
export async function queueUrl(value: string | undefined, command: string): Promise<string> {
  const url = value ?? process.env.TESSERA_QUEUE;
  if (!url) throw new UsageError('--queue redis://HOST:PORT/DB is required (or set TESSERA_QUEUE)', command);
  const { parseRedisUrl, QueueUrlError } = await import('@tessera/sweeps/queue');
  try {
    parseRedisUrl(url);
  } catch (error) {
    if (error instanceof QueueUrlError) throw new UsageError(error.message, command);
    throw error;
  }
  return url;
}

function positiveNumber(name: string, value: string | undefined, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const ok = integer ? /^\d+$/.test(value) : /^\d+(\.\d+)?$/.test(value);
  if (!ok || Number(value) <= 0) throw new UsageError(`--${name} expects a ${integer ? 'whole ' : ''}number > 0, got "${value}"`, 'worker');
  return Number(value);
}

/** `exp sweep status ID --queue URL` (called from the sweep command). */
export async function printSweepStatus(id: string | undefined, queue: string | undefined, context: CommandContext): Promise<number> {
  if (!id) throw new UsageError('status needs the sweep name: exp sweep status NAME --queue URL', 'sweep');
  const url = await queueUrl(queue, 'sweep');
  const { sweepStatus, formatSweepStatus, describeQueue } = await import('@tessera/sweeps/queue');
  const status = await sweepStatus(url, id);
  if (!status) {
    context.stderr.write(`exp sweep: no sweep "${id}" on ${describeQueue(url)} (the name is the sweep file's name:, or its file name)\n`);
    return 1;
  }
  context.stdout.write(`${formatSweepStatus(status)}\n`);
  return 0;
}

export default defineCommand({
  name: 'worker',
  summary: 'Run sweep trials from a Redis queue (a machine\'s share of a distributed sweep)',
  description:
    'Pulls trials of any sweep started with `exp sweep FILE --executor queue --queue URL` and runs each as an ' +
    '`exp run` child in its own process group, reporting every epoch to the sweep\'s controller through Redis. ' +
    'A trial whose worker dies (or freezes past --lease) is given to another worker and continues from its last ' +
    'checkpoint when the run store (--runs-dir) is shared; a pruned trial gets SIGINT (checkpoint, exit 130) ' +
    'within one epoch. Ctrl-C checkpoints the running trials and hands them back to the queue. ' +
    'See docs/distributed.md.',
  positionals: [],
  options: {
    queue: { type: 'string', placeholder: 'URL', description: 'Redis URL, redis://HOST:PORT/DB (default: $TESSERA_QUEUE)' },
    concurrency: { type: 'string', placeholder: 'N', description: 'Trials at once on this machine (default 1, or one per GPU with --gpus)' },
    gpus: { type: 'string', placeholder: 'IDS', description: 'GPU ids handed out round-robin as CUDA_VISIBLE_DEVICES, e.g. 0,1' },
    'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the run store; share it (NFS) so a redelivered trial resumes (default: $TESSERA_RUNS_DIR, else runs/)' },
    name: { type: 'string', placeholder: 'NAME', description: 'Name shown by exp sweep status (default: HOST-PID)' },
    lease: { type: 'string', placeholder: 'SECONDS', description: 'A trial\'s lock: a worker silent this long loses it to another (default 30)' },
    grace: { type: 'string', placeholder: 'SECONDS', description: 'After a stop, how long a trial may take to checkpoint before SIGKILL (default 60)' },
  },
  examples: [
    ['exp worker --queue redis://queue.lan:6379/0', 'One trial at a time on this machine'],
    ['exp worker --queue redis://queue.lan:6379/0 --gpus 0,1,2,3', 'Four trials at once, one per GPU'],
    ['exp worker --queue redis://queue.lan:6379/0 --concurrency 2 --runs-dir /mnt/shared/runs', 'Two CPU trials, checkpoints on shared storage'],
  ],
  async run({ options }, context) {
    const url = await queueUrl(options.queue, 'worker');
    const gpus = options.gpus === undefined ? [] : options.gpus.split(',').map((g) => g.trim());
    if (gpus.some((g) => !/^\d+$/.test(g))) throw new UsageError(`--gpus expects GPU ids like 0,1, got "${options.gpus}"`, 'worker');
    const concurrency = positiveNumber('concurrency', options.concurrency, true) ?? Math.max(1, gpus.length);
    const lease = positiveNumber('lease', options.lease, false);
    const grace = positiveNumber('grace', options.grace, false);
    const { runQueueWorker } = await import('@tessera/sweeps/queue');
    const { resolve } = await import('node:path');

    const shutdown = abortOnSignals({
      first: () => context.stderr.write('\nexp worker: checkpointing the running trials and handing them back to the queue\n'),
    });
    try {
      await runQueueWorker({
        url,
        command: expCommand(),
        concurrency,
        gpus,
        ...(options['runs-dir'] !== undefined ? { runsDir: resolve(context.cwd, options['runs-dir']) } : {}),
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(lease !== undefined ? { lockDurationMs: lease * 1000 } : {}),
        ...(grace !== undefined ? { graceMs: grace * 1000 } : {}),
        log: (line) => context.stdout.write(`${new Date().toISOString()} ${line}\n`),
        signal: shutdown.signal,
      });
    } finally {
      shutdown.release();
    }
    return 0;
  },
});
