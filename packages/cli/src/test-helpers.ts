import type { Registries } from '@tessera/core';
import { main } from './main.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `exp ...argv` in-process, capturing its output and exit code. */
export async function runCli(argv: string[], options: { cwd?: string; registries?: () => Registries } = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    ...options,
  });
  return { code, stdout, stderr };
}
