/** What a command does on SIGINT/SIGTERM; the signal it received is passed along. */
export interface SignalHandlers {
  /** The first signal, after which `signal` is aborted: the command winds down cooperatively. */
  first?(signal: NodeJS.Signals): void;
  /**
   * A later one, more than a second after the first (one within a second is the same keypress
   * relayed by a wrapper such as tsx or pnpm). Without it the handlers come off at the first
   * signal, so a second one does what it does by default: end the process.
   */
  again?(signal: NodeJS.Signals): void;
}

/**
 * The cooperative stop of a long command (`exp run`, `exp sweep`, `exp worker`): the first SIGINT
 * or SIGTERM aborts `signal` (with the signal's name as reason) and the command finishes its step
 * or its trials checkpoint; `release` takes the handlers off when the command is done.
 */
export function abortOnSignals(handlers: SignalHandlers = {}): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  let firstAt: number | undefined;
  const release = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (firstAt === undefined) {
      firstAt = Date.now();
      handlers.first?.(signal);
      controller.abort(signal);
      if (!handlers.again) release();
    } else if (Date.now() - firstAt > 1000) {
      handlers.again?.(signal);
    }
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { signal: controller.signal, release };
}
