import { existsSync, accessSync, constants, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendReport } from '@tessera/core';
import type { CifarFormat } from '@tessera/data';
import { defineCommand } from '../command.ts';

/**
 * `exp doctor`: what this machine can run and how to fix what is missing: the Node version, each
 * TF.js backend, where CIFAR-100 would be read from, and where runs are recorded.
 */
export interface Check {
  name: string;
  ok: boolean;
  /** Nice to have: shown as a note rather than a failure when missing. */
  optional?: boolean;
  /** What was found. */
  detail: string;
  /** How to fix it, when not ok (or how to do better). */
  fix?: string;
}

const MIN_NODE_MAJOR = 20;

export function checkNode(version = process.versions.node): Check {
  const major = Number(version.split('.')[0]);
  return major >= MIN_NODE_MAJOR
    ? { name: 'node', ok: true, detail: `Node ${version}` }
    : { name: 'node', ok: false, detail: `Node ${version}`, fix: `install Node ${MIN_NODE_MAJOR} or newer (https://nodejs.org, or nvm install ${MIN_NODE_MAJOR})` };
}

export function checkBackends(reports: BackendReport[], setupHint: string): Check[] {
  const checks = reports.map((r): Check => ({ name: `backend ${r.name}`, ok: r.available, optional: true, detail: r.description }));
  const best = reports.find((r) => r.available);
  const native = reports.find((r) => r.name === 'tensorflow');
  if (native && !native.available) {
    const check = checks.find((c) => c.name === 'backend tensorflow')!;
    check.fix = setupHint;
  }
  checks.push(
    best
      ? { name: 'backend auto', ok: true, detail: `backend: auto would use ${best.name}` }
      : { name: 'backend auto', ok: false, detail: 'no backend loads', fix: 'reinstall dependencies: corepack pnpm install' },
  );
  return checks;
}

/**
 * Where `data: {type: cifar100}` without `dir` reads from ($TESSERA_DATA_DIR, then the cache),
 * and, when it finds nothing there, whether a copy sits in a usual shared folder nearby.
 */
export function checkCifar100(format: CifarFormat, cacheDir: string, repoRoot: string, env = process.env): Check {
  const { archive, trainFiles, testFiles } = format;
  const has = (dir: string, name: string) => existsSync(join(dir, name)) || existsSync(join(dir, `${name}.gz`));
  const find = (dir: string) => {
    for (const candidate of [dir, join(dir, archive.folder)]) {
      if ([...trainFiles, ...testFiles].every((f) => has(candidate, f))) return `binaries in ${candidate}`;
      if (existsSync(join(candidate, archive.file))) return `archive ${join(candidate, archive.file)} (extracted on first use)`;
    }
    return undefined;
  };
  const used = [...(env.TESSERA_DATA_DIR ? [env.TESSERA_DATA_DIR] : []), cacheDir];
  for (const dir of used) {
    const found = find(dir);
    if (found) return { name: 'data cifar100', ok: true, optional: true, detail: `CIFAR-100 ${found}` };
  }
  const nearby = [join(repoRoot, 'shared', 'data', 'cifar-100'), join(repoRoot, '..', 'shared', 'data', 'cifar-100')].find((dir) => find(dir));
  return {
    name: 'data cifar100',
    ok: false,
    optional: true,
    detail: `CIFAR-100 not found in ${used.join(', ')}${nearby ? `; a copy is in ${resolve(nearby)}` : ''}`,
    fix: nearby
      ? `export TESSERA_DATA_DIR=${resolve(nearby)} (or set data.dir in the experiment)`
      : `set data.dir or TESSERA_DATA_DIR to a directory with train.bin and test.bin (or .gz), or let the first run download ${archive.url} (md5 ${archive.md5}); experiments/smoke.yaml needs no files`,
  };
}

export function checkTracking(runsRoot: string, env = process.env): Check[] {
  const checks: Check[] = [];
  try {
    mkdirSync(runsRoot, { recursive: true });
    accessSync(runsRoot, constants.W_OK);
    checks.push({ name: 'tracking local', ok: true, detail: `runs are recorded in ${runsRoot}` });
  } catch (error) {
    checks.push({
      name: 'tracking local',
      ok: false,
      detail: `${runsRoot} is not writable (${(error as Error).message})`,
      fix: 'set TESSERA_RUNS_DIR or pass --runs-dir to a writable directory',
    });
  }
  if (env.MLFLOW_TRACKING_URI) {
    checks.push({ name: 'tracking mlflow', ok: true, detail: `MLFLOW_TRACKING_URI is set (${env.MLFLOW_TRACKING_URI}); experiments with a tracking: section log there too` });
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  return checks
    .map((c) => `${c.ok ? ' ok ' : c.optional ? ' -- ' : 'FAIL'}  ${c.name.padEnd(22)} ${c.detail}${c.fix ? `\n      fix: ${c.fix}` : ''}`)
    .join('\n');
}

/** The repository root, found from this file's location (packages/cli/src/commands). */
const REPO_ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));

export default defineCommand({
  name: 'doctor',
  summary: 'Check this machine: Node, TF.js backends, data, where runs are recorded',
  description:
    'Reports the Node version, which TF.js backends load (and how to install the missing ones), where CIFAR-100 ' +
    'would be read from, and where runs are recorded. Exits 1 when something every run needs is missing; ' +
    'a missing optional backend or dataset is only reported with its fix.',
  positionals: [],
  options: {},
  examples: [['exp doctor', 'Check the installation']],
  async run(_args, context) {
    const { defaultRunsRoot, describeBackends, SETUP_HINT } = await import('@tessera/core');
    const { CIFAR100, defaultCacheDir } = await import('@tessera/data');
    const checks = [
      checkNode(),
      ...checkBackends(await describeBackends(), SETUP_HINT),
      checkCifar100(CIFAR100, defaultCacheDir(), REPO_ROOT),
      ...checkTracking(defaultRunsRoot(context.cwd)),
    ];
    context.stdout.write(`${formatChecks(checks)}\n`);
    // Missing optional backends or data are advice, not failure: smoke runs work without them.
    const essential = checks.filter((c) => c.name === 'node' || c.name === 'backend auto' || c.name === 'tracking local');
    return essential.every((c) => c.ok) ? 0 : 1;
  },
});
