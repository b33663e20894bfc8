import type { Output } from './command.ts';

/**
 * A block of text redrawn in place at the bottom of a terminal (a sweep's trial table), with
 * log lines scrolling above it. Only for terminals: elsewhere callers print plain lines.
 */
export class LiveBlock {
  private shown = 0;
  private text = '';

  constructor(private readonly out: Output) {}

  /** A LiveBlock when `out` is an interactive terminal outside CI, else null. */
  static forOutput(out: Output): LiveBlock | null {
    const tty = Boolean((out as { isTTY?: boolean }).isTTY);
    return tty && !process.env.CI ? new LiveBlock(out) : null;
  }

  /** Prints a line above the block. */
  log(line: string): void {
    this.erase();
    this.out.write(`${line}\n`);
    this.draw();
  }

  /** Replaces the block's text. */
  update(text: string): void {
    this.erase();
    this.text = text;
    this.draw();
  }

  /** Removes the block (the caller prints the final version as plain text). */
  close(): void {
    this.erase();
    this.text = '';
  }

  private erase(): void {
    // Up to the block's first line, then clear to the end of the screen.
    if (this.shown > 0) this.out.write(`\x1b[${this.shown}F\x1b[J`);
    this.shown = 0;
  }

  private draw(): void {
    if (!this.text) return;
    this.out.write(`${this.text}\n`);
    this.shown = this.text.split('\n').length;
  }
}
