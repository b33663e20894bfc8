import type { Output } from './command.ts';

/**
 * The cooperative stop of a long command (`exp sweep`, `exp worker`): the first SIGINT or SIGTERM
 * prints `message` and aborts `signal`, and the command winds down (trials checkpoint); `release`
 * takes the handlers off again, so a later Ctrl-C kills as usual.
 */
export function abortOnSignals(message: string, stderr: Output): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const stop = () => {
    stderr.write(`\n${message}\n`);
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    release() {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
