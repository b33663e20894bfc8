import { describe, expect, it } from 'vitest';
import { LiveBlock } from './live.ts';

/** A tiny terminal: applies "n lines up" + "clear below" to a list of lines, as a screen would. */
function screen() {
  let lines: string[] = [''];
  const out = {
    isTTY: true,
    write(text: string) {
      for (const part of text.split(/(\x1b\[\d+F\x1b\[J)/)) {
        const up = part.match(/^\x1b\[(\d+)F\x1b\[J$/);
        if (up) {
          lines = lines.slice(0, lines.length - 1 - Number(up[1]));
          lines.push('');
          continue;
        }
        const pieces = part.split('\n');
        lines[lines.length - 1] = lines.at(-1)! + pieces[0]!;
        lines.push(...pieces.slice(1));
      }
    },
  };
  return { out, text: () => lines.join('\n') };
}

describe('LiveBlock', () => {
  it('redraws the block in place and scrolls log lines above it', () => {
    const s = screen();
    const live = new LiveBlock(s.out);
    live.update('trial  state\nt0     RUNNING');
    live.log('t0 started');
    live.update('trial  state\nt0     FINISHED');
    live.log('t1 started');
    expect(s.text()).toBe('t0 started\nt1 started\ntrial  state\nt0     FINISHED\n');
    live.close();
    expect(s.text()).toBe('t0 started\nt1 started\n');
  });

  it('is only used on an interactive terminal outside CI', () => {
    const ci = process.env.CI;
    try {
      delete process.env.CI;
      expect(LiveBlock.forOutput({ write() {} })).toBeNull();
      expect(LiveBlock.forOutput({ isTTY: true, write() {} } as never)).toBeInstanceOf(LiveBlock);
      process.env.CI = 'true';
      expect(LiveBlock.forOutput({ isTTY: true, write() {} } as never)).toBeNull();
    } finally {
      if (ci === undefined) delete process.env.CI;
      else process.env.CI = ci;
    }
  });
});
