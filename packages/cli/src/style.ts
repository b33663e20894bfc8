import { underlying } from './redacting-output.ts';
import type { ConfigError } from '@tessera/core';
import type { Output } from './command.ts';

export interface Style {
  red(text: string): string;
  green(text: string): string;
  cyan(text: string): string;
  bold(text: string): string;
  dim(text: string): string;
}

/**
 * ANSI styles for a terminal; plain text for pipes, files and NO_COLOR. FORCE_COLOR turns them on
 * for the process's own stdout/stderr; captured output (a program's or a test's) stays plain.
 */
export function styleFor(stream: Output): Style {
  const force = process.env.FORCE_COLOR;
  const raw = underlying(stream);
  const own = raw === process.stdout || raw === process.stderr;
  const on = own && (force !== undefined && force !== '' ? force !== '0' : Boolean((stream as { isTTY?: boolean }).isTTY) && !process.env.NO_COLOR);
  const sgr = (open: number, close: number) => (text: string) => (on ? `\x1b[${open}m${text}\x1b[${close}m` : text);
  return { red: sgr(31, 39), green: sgr(32, 39), cyan: sgr(36, 39), bold: sgr(1, 22), dim: sgr(2, 22) };
}

/** ConfigError.render(), with the location and path picked out on a terminal. */
export function renderConfigError(error: Pick<ConfigError, 'parts'>, cwd: string, style: Style): string {
  const { location, path, detail, hint } = error.parts(cwd);
  return `${location ? `${style.cyan(location)} ` : ''}${path ? `${style.bold(path)}: ` : ''}${detail}${hint ? style.dim(`; ${hint}`) : ''}`;
}
