/**
 * Keras-like progress output. On a terminal: one line per epoch, redrawn in place
 * (`12/352 [=>.....] - ETA: 1:02 - loss: 4.3 - accuracy: 0.05 - 410 img/s`). Elsewhere (a pipe,
 * CI=true): a plain line every `plainEverySeconds` and one at the end of each epoch, so logs
 * stay readable.
 */
export interface ProgressReporter {
  epochStart(epoch: number, epochs: number, steps: number): void;
  step(step: number, running: Record<string, number>, imagesPerSecond: number): void;
  epochEnd(epoch: number, logs: Record<string, number>): void;
  message(text: string): void;
}

export interface ProgressOptions {
  write: (text: string) => void;
  tty: boolean;
  plainEverySeconds?: number;
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** `loss: 4.1234 - accuracy: 0.0850`, skipping the timing fields. */
export function formatLogs(logs: Record<string, number>): string {
  return Object.entries(logs)
    .filter(([k]) => k !== 'epoch_time' && k !== 'images_per_second')
    .map(([k, v]) => `${k}: ${k === 'learning_rate' ? v.toExponential(3) : v.toFixed(4)}`)
    .join(' - ');
}

export function createProgress(options: ProgressOptions): ProgressReporter {
  const now = options.now ?? (() => performance.now() / 1000);
  const plainEvery = options.plainEverySeconds ?? 30;
  let steps = 0;
  let epochStarted = 0;
  let lastDraw = -Infinity;
  let lineOpen = false;
  const BAR = 30;

  const bar = (step: number) => {
    const done = steps > 0 ? Math.min(Math.floor((BAR * step) / steps), BAR) : 0;
    return `[${'='.repeat(Math.max(done - 1, 0))}${done > 0 ? (step >= steps ? '=' : '>') : ''}${'.'.repeat(BAR - done)}]`;
  };

  return {
    epochStart(epoch, epochs, stepCount) {
      steps = stepCount;
      epochStarted = now();
      lastDraw = options.tty ? -Infinity : epochStarted;
      options.write(`Epoch ${epoch + 1}/${epochs}\n`);
    },
    step(step, running, imagesPerSecond) {
      const t = now();
      const interval = options.tty ? 0.1 : plainEvery;
      if (t - lastDraw < interval && step < steps) return;
      lastDraw = t;
      const elapsed = t - epochStarted;
      const eta = step > 0 ? (elapsed / step) * (steps - step) : Infinity;
      const text = `${String(step).padStart(String(steps).length)}/${steps} ${bar(step)} - ETA: ${formatDuration(eta)} - ${formatLogs(running)} - ${imagesPerSecond.toFixed(0)} img/s`;
      if (options.tty) {
        options.write(`\r${text}\x1b[K`);
        lineOpen = true;
      } else if (step < steps) {
        options.write(`${text}\n`);
      }
    },
    epochEnd(_epoch, logs) {
      const text = `${steps}/${steps} ${bar(steps)} - ${formatDuration(logs.epoch_time ?? 0)} - ${formatLogs(logs)} - ${(logs.images_per_second ?? 0).toFixed(0)} img/s`;
      options.write(`${options.tty ? '\r' : ''}${text}${options.tty ? '\x1b[K' : ''}\n`);
      lineOpen = false;
    },
    message(text) {
      if (lineOpen) options.write('\n');
      lineOpen = false;
      options.write(`${text}\n`);
    },
  };
}
