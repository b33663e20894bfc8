import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Helpers of the fault-injection suite (docs/reliability.md): real `exp` processes, real files. */
export const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
export const SMOKE = join(ROOT, 'experiments', 'smoke.yaml');
export const BIN = join(ROOT, 'packages', 'cli', 'src', 'bin.ts');

/** Every file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]));
}

/** The files under `dir` whose bytes contain any of `needles`. */
export function filesContaining(dir: string, needles: string[]): string[] {
  return filesUnder(dir).filter((file) => {
    const bytes = readFileSync(file);
    return needles.some((needle) => bytes.includes(needle));
  });
}

export interface ExpProcess {
  child: ChildProcess;
  output(): string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
}

/**
 * `exp ...args` as its own process (`node --conditions=@tessera/source --import tsx bin.ts`, as docs/distributed.md starts it),
 * with CI=true (plain progress lines) and no MLFLOW_* from the developer's environment.
 */
export function spawnExp(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): ExpProcess {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('MLFLOW_')) env[key] = value;
  const child = spawn(process.execPath, ['--conditions=@tessera/source', '--import', 'tsx', BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...env, CI: 'true', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((done) =>
    child.on('close', (code, signal) => done({ code, signal, output })),
  );
  return { child, output: () => output, exit };
}

/** Resolves once `predicate(output)` holds (polling), or rejects after `timeoutMs`. */
export async function waitForOutput(proc: ExpProcess, predicate: (output: string) => boolean, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    if (predicate(proc.output())) return;
    if (proc.child.exitCode !== null) throw new Error(`exp exited (${proc.child.exitCode}) before the expected output:\n${proc.output()}`);
  }
  throw new Error(`timed out waiting for output:\n${proc.output()}`);
}
