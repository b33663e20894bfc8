import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = fileURLToPath(new URL('./bin.ts', import.meta.url));

/** `exp ...argv` as a child process of its own (as users run it, with a fresh module cache and TF.js class registry). */
export function runExpProcess(argv: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...argv], { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export interface ServedModel {
  url: string;
  output: () => string;
  /** SIGTERM, then the exit code. */
  stop: () => Promise<number | null>;
  kill: () => void;
}

/** `exp serve MODEL --port 0 --backend cpu ...args` as a child process (as users start it); resolves once it listens. */
export async function startExpServe(model: string, args: string[] = [], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ServedModel> {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'serve', model, '--port', '0', '--backend', 'cpu', ...args], {
    cwd: options.cwd ?? ROOT, // where tsx resolves; a run is found through --runs-dir or TESSERA_RUNS_DIR
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const started = Date.now();
  while (!/at (http:\/\/127\.0\.0\.1:\d+)/.test(output)) {
    if (Date.now() - started > 60_000 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`exp serve did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)![1]!;
  return {
    url,
    output: () => output,
    stop: () => (child.kill('SIGTERM'), exited),
    kill: () => child.kill('SIGKILL'),
  };
}

/** n deterministic 8x8x3 images as CIFAR records: 1 label byte (r % 4), then the red, green and blue planes (193 bytes each). */
export function smallRecords(n: number): Uint8Array {
  const bytes = new Uint8Array(n * 193);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 256;
  for (let r = 0; r < n; r++) bytes[r * 193] = r % 4;
  return bytes;
}

/** Record r of smallRecords as an HxWxC array, as a client sends it to exp serve. */
export function recordImage(bytes: Uint8Array, r: number): number[][][] {
  return Array.from({ length: 8 }, (_, y) => Array.from({ length: 8 }, (_, x) => [0, 1, 2].map((c) => bytes[r * 193 + 1 + c * 64 + y * 8 + x]!)));
}

/** The first n smallRecords as NHWC float32, normalised by hand: planes to pixels, (x - mean) / sqrt(variance) per channel. */
export function normalisedRecords(bytes: Uint8Array, n: number, { mean, variance }: { mean: number[]; variance: number[] }): Float32Array {
  const pixels = new Float32Array(n * 8 * 8 * 3);
  for (let r = 0; r < n; r++)
    for (let p = 0; p < 64; p++)
      for (let c = 0; c < 3; c++) pixels[(r * 64 + p) * 3 + c] = (bytes[r * 193 + 1 + c * 64 + p]! - mean[c]!) / Math.sqrt(variance[c]!);
  return pixels;
}
