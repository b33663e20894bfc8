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
  /**
   * A supervisor cannot be asked for a second signal: `expired` runs this many seconds after the
   * first stop (a signal or `abort`) if the command is still winding down, and should end it.
   */
  deadline?: { seconds: number; expired(seconds: number): void };
}

/**
 * The cooperative stop of a long command (`exp run`, `exp sweep`, `exp worker`): the first SIGINT
 * or SIGTERM aborts `signal` (with the signal's name as reason) and the command finishes its step
 * or its trials checkpoint; `abort(reason)` starts the same stop without a signal (a sweep trial whose
 * controller died); `release` takes the handlers (and the deadline) off when the command is done.
 */
export function abortOnSignals(handlers: SignalHandlers = {}): { signal: AbortSignal; abort(reason: string): void; release(): void } {
  const controller = new AbortController();
  let firstAt: number | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const removeListeners = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const release = () => {
    removeListeners();
    clearTimeout(deadline);
  };
  const abort = (reason: string) => {
    if (firstAt !== undefined) return;
    firstAt = Date.now();
    controller.abort(reason);
    if (handlers.deadline) {
      const { seconds, expired } = handlers.deadline;
      deadline = setTimeout(() => expired(seconds), seconds * 1000);
      deadline.unref();
    }
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (firstAt === undefined) {
      handlers.first?.(signal);
      abort(signal);
      if (!handlers.again) removeListeners();
    } else if (Date.now() - firstAt > 1000) {
      handlers.again?.(signal);
    }
  }
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { signal: controller.signal, abort, release };
}

/** Seconds a stopping run may take to finish its step and checkpoint before it exits anyway. */
export function stopDeadlineSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.TESSERA_STOP_DEADLINE ?? 60);
  return Number.isFinite(value) && value > 0 ? value : 60;
}
