import { existsSync, accessSync, constants, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BackendReport } from '@tessera/core';
import type { CifarFormat } from '@tessera/data';
import { defineCommand } from '../command.ts';

/**
 * `exp doctor`: what this machine can run and how to fix what is missing: the Node version, each
 * TF.js backend, where the CIFAR-100 experiments will read their data from, where runs are
 * recorded, and whether the MLflow server that MLFLOW_TRACKING_URI selects answers.
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

/** The places a CIFAR dataset looks in (`cifarPlaces` of @tessera/data), and what named `dir`. */
export interface CifarPlaces {
  dir: string | undefined;
  searchDirs: string[];
  cacheDir: string;
  /** `TESSERA_DATA_DIR` or `data.dir`: where `dir` came from. */
  dirFrom: string;
}

/**
 * Where the bundled CIFAR-100 experiments read their files from: the `data` section of their
 * shared base file, resolved the way the dataset resolves it (data.dir or TESSERA_DATA_DIR, then
 * data.search relative to the base file, then the cache).
 */
export async function bundledCifarPlaces(baseFile: string, env = process.env): Promise<CifarPlaces> {
  const { loadExperiment } = await import('@tessera/core');
  const { cifarPlaces } = await import('@tessera/data');
  let data: { dir?: string; search?: string[]; cache_dir?: string } = {};
  let locate: ((path: readonly (string | number)[]) => { file: string; line: number; col: number }) | undefined;
  if (existsSync(baseFile)) {
    const loaded = loadExperiment(baseFile);
    data = (loaded.config.data ?? {}) as typeof data;
    locate = loaded.locate;
  }
  const places = cifarPlaces(data, { configDir: dirname(baseFile), ...(locate ? { locate } : {}) }, env);
  return { ...places, dirFrom: data.dir !== undefined ? 'data.dir' : 'TESSERA_DATA_DIR' };
}

/** Where the bundled CIFAR-100 experiments will find the data (`searchedBy` names their base file). */
export async function checkCifar100(format: CifarFormat, places: CifarPlaces, searchedBy: string): Promise<Check> {
  const { findCifar } = await import('@tessera/data');
  const { archive } = format;
  const found = findCifar(format, places);
  const within = (path: string, dir: string) => path === dir || path.startsWith(`${dir}${sep}`);
  if (found) {
    const where = found.kind === 'binaries' ? found.dir : found.file;
    const via =
      places.dir !== undefined && within(where, places.dir)
        ? places.dirFrom
        : places.searchDirs.some((dir) => within(where, dir))
          ? `data.search of ${searchedBy}`
          : 'the cache';
    const detail = found.kind === 'binaries' ? `CIFAR-100 binaries in ${where} (found through ${via})` : `CIFAR-100 archive ${where} (found through ${via}; extracted on first use)`;
    return { name: 'data cifar100', ok: true, optional: true, detail };
  }
  const tried = [...(places.dir ? [`${places.dir} (${places.dirFrom})`] : [`${places.dirFrom} (unset)`]), ...places.searchDirs, `${places.cacheDir} (the cache)`];
  return {
    name: 'data cifar100',
    ok: false,
    optional: true,
    detail: `CIFAR-100 not found; looked in ${tried.join(', ')}`,
    fix:
      `put train.bin and test.bin (or .gz) into ${places.searchDirs[0] ?? 'a directory'} or a directory named by TESSERA_DATA_DIR, ` +
      `or let the first run download ${archive.url} (md5 ${archive.md5}) into the cache; experiments/smoke.yaml needs no files`,
  };
}

/** The local run store, and MLflow when MLFLOW_TRACKING_URI selects it (with whether the server answers). */
export async function checkTracking(runsRoot: string, env = process.env, options: { timeoutMs?: number } = {}): Promise<Check[]> {
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
  checks.push(await checkMlflow(env, options.timeoutMs ?? MLFLOW_TIMEOUT_MS));
  return checks;
}

const MLFLOW_TIMEOUT_MS = 3000;

/**
 * MLFLOW_TRACKING_URI alone sends every run to MLflow too (createMlflowTracker), so the server
 * is asked for one experiment with the run's own credentials. A server that does not answer only
 * delays the MLflow copy (runs keep an outbox for `exp sync`); refused credentials or a bad URI
 * make `exp run` fail before training, so those are failures.
 */
export async function checkMlflow(env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Check> {
  const name = 'tracking mlflow';
  if (!env.MLFLOW_TRACKING_URI) {
    return { name, ok: true, optional: true, detail: 'off: MLFLOW_TRACKING_URI is not set (an experiment\'s tracking.uri can still name a server)' };
  }
  const { MlflowClient, mlflowConfigFromEnv } = await import('@tessera/mlflow');
  const { redactSecrets } = await import('@tessera/core');
  const safe = (text: string) => redactSecrets(text);
  let client;
  try {
    client = MlflowClient.fromEnv(env, { timeoutMs, retry: { maxRetries: 0 } });
  } catch (error) {
    return { name, ok: false, detail: safe((error as Error).message), fix: 'fix or unset the MLFLOW_* variables (docs/tracking.md)' };
  }
  const credentials = mlflowConfigFromEnv(env).credentials;
  const server = `${client.trackingUri}${credentials ? ` (${credentials.describe()})` : ''}`;
  try {
    await client.searchExperiments({ maxResults: 1 });
    return { name, ok: true, detail: `MLFLOW_TRACKING_URI selects MLflow: every run is logged to ${server} as well; the server answers` };
  } catch (error) {
    const status = (error as { status?: number }).status;
    const message = safe((error as Error).message);
    if (status === 401 || status === 403) {
      return { name, ok: false, detail: `MLFLOW_TRACKING_URI selects ${server}, which refuses the credentials: ${message}`, fix: 'set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN, to an account of that server' };
    }
    return {
      name,
      ok: false,
      optional: true,
      detail: `MLFLOW_TRACKING_URI selects ${server}, which does not answer: ${message}`,
      fix: 'start the server (scripts/setup-mlflow.sh), or unset MLFLOW_TRACKING_URI to record runs locally only; runs meanwhile keep an outbox that `exp sync` uploads',
    };
  }
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
    'Reports the Node version, which TF.js backends load (and how to install the missing ones), where the ' +
    'CIFAR-100 experiments will read their data from (data.dir or TESSERA_DATA_DIR, the data.search folders of ' +
    'experiments/base/cifar100.yaml, the cache), where runs are recorded and, when MLFLOW_TRACKING_URI is set, ' +
    'whether that MLflow server answers (within 3 s, with the MLFLOW_TRACKING_* credentials). Exits 1 when ' +
    'something every run needs is missing (or the MLflow server refuses the credentials); a missing optional ' +
    'backend or dataset, or an MLflow server that does not answer, is only reported with its fix.',
  positionals: [],
  options: {},
  examples: [
    ['exp doctor', 'Check the installation'],
    ['MLFLOW_TRACKING_URI=http://127.0.0.1:5000 exp doctor', 'Also check the MLflow server runs will log to'],
  ],
  async run(_args, context) {
    const { defaultRunsRoot, describeBackends, SETUP_HINT } = await import('@tessera/core');
    const { CIFAR100 } = await import('@tessera/data');
    const baseFile = join(REPO_ROOT, 'experiments', 'base', 'cifar100.yaml');
    const checks = [
      checkNode(),
      ...checkBackends(await describeBackends(), SETUP_HINT),
      await checkCifar100(CIFAR100, await bundledCifarPlaces(baseFile), relative(context.cwd, baseFile) || baseFile),
      ...(await checkTracking(defaultRunsRoot(context.cwd))),
    ];
    context.stdout.write(`${formatChecks(checks)}\n`);
    // Missing optional backends or data are advice, not failure: smoke runs work without them.
    return checks.every((c) => c.ok || c.optional) ? 0 : 1;
  },
});
