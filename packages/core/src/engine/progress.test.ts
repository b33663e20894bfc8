import { describe, expect, it } from 'vitest';
import { createProgress, formatDuration } from './progress.ts';

function capture(tty: boolean) {
  const out: string[] = [];
  let now = 0;
  const progress = createProgress({ write: (t) => out.push(t), tty, plainEverySeconds: 10, now: () => now });
  return { out, progress, tick: (s: number) => (now += s) };
}

describe('progress', () => {
  it('redraws one line per epoch on a terminal, Keras style', () => {
    const { out, progress, tick } = capture(true);
    progress.epochStart(0, 3, 4);
    tick(1);
    progress.step(1, { loss: 2.5, accuracy: 0.25 }, 128);
    tick(1);
    progress.step(2, { loss: 2, accuracy: 0.5 }, 128);
    progress.epochEnd(0, { loss: 1.5, accuracy: 0.75, val_loss: 1.25, epoch_time: 4, images_per_second: 100 });
    expect(out[0]).toBe('Epoch 1/3\n');
    expect(out[1]).toBe('\r1/4 [======>.......................] - ETA: 0:03 - loss: 2.5000 - accuracy: 0.2500 - 128 img/s\x1b[K');
    expect(out[2]).toBe('\r2/4 [==============>...............] - ETA: 0:02 - loss: 2.0000 - accuracy: 0.5000 - 128 img/s\x1b[K');
    expect(out[3]).toBe('\r4/4 [==============================] - 0:04 - loss: 1.5000 - accuracy: 0.7500 - val_loss: 1.2500 - 100 img/s\x1b[K\n');
  });

  it('prints plain lines at most every plainEverySeconds elsewhere', () => {
    const { out, progress, tick } = capture(false);
    progress.epochStart(1, 3, 100);
    for (let step = 1; step <= 30; step++) {
      tick(1);
      progress.step(step, { loss: 1 }, 10);
    }
    progress.message('note');
    expect(out.filter((l) => / \d+\/100 /.test(l)).map((l) => l.trim().split(' ')[0])).toEqual(['10/100', '20/100', '30/100']);
    expect(out.every((l) => !l.includes('\r'))).toBe(true);
    expect(out.at(-1)).toBe('note\n');
  });

  it('formats durations', () => {
    expect(formatDuration(5)).toBe('0:05');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(Infinity)).toBe('?');
  });
});
