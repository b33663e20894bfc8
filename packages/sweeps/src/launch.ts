import { join, relative } from 'node:path';
import { assertSafeName, containedJoin, defaultRunsRoot, type RunOptions, type TrackingConfig, type Registries } from '@tessera/core';
import { LocalProcessExecutor } from './local-executor.ts';
import { loadSweep, type LoadedSweep } from './load.ts';
import { bestTrial, runSweep, type RunSweepOptions, type SweepResult } from './runner.ts';
import { createSearcher } from './searcher.ts';
import { toOverrides, type Params } from './space.ts';
import type { SweepSpec } from './spec.ts';
import type { SweepState } from './state.ts';
import type { SweepTrackingOptions } from './sweep-run.ts';

export interface SweepFileOptions {
  registries: Registries;
  /** The `exp` command line before its subcommand (see LocalExecutorOptions.command). */
  command: readonly string[];
  /** Root of the run store; the sweep lives in `<runsDir>/sweeps/<name>/`. */
  runsDir?: string;
  /** The trial table (default `<runsDir>/sweeps/<name>/state.json`). */
  statePath?: string;
  /** `--set` arguments for every trial, before the trial's own (part of the sweep's identity). */
  overrides?: readonly string[];
  /** Override the file's `parallel` / `max_trials` (a larger max_trials extends a finished sweep). */
  parallel?: number;
  maxTrials?: number;
  /** Extra `exp run` arguments for every trial, e.g. `['--backend', 'cpu']`. */
  runArgs?: readonly string[];
  /**
   * The tracker besides the local store for the sweep's own run, as RunOptions.createTracker
   * (default: MLflow when the base experiment's tracking section or MLFLOW_TRACKING_URI names one).
   */
  createTracker?: RunOptions['createTracker'];
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** See RunSweepOptions.onUpdate. */
  onUpdate?: RunSweepOptions['onUpdate'];
}

/** Where a sweep keeps its trial table and its trials' run records. */
export function sweepDir(spec: Pick<SweepSpec, 'name' | 'experiment'>, runsDir?: string): string {
  // The name may come from a queue message: it is data, never a path.
  return containedJoin(runsDir ?? defaultRunsRoot(spec.experiment), 'sweeps', assertSafeName(spec.name, 'sweep name'));
}

/**
 * `exp sweep` as a function: load and check the sweep file (against the full experiment schema),
 * then run or resume it with a local process pool of `exp run` children.
 */
export async function runSweepFile(file: string, options: SweepFileOptions): Promise<SweepResult & { spec: SweepSpec; statePath: string }> {
  const { spec: loaded, base, notes } = loadSweep(file, { registries: options.registries, overrides: options.overrides ?? [] });
  for (const note of notes) options.log?.(`note: ${note}`);
  const spec: SweepSpec = {
    ...loaded,
    ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
    ...(options.maxTrials !== undefined ? { maxTrials: options.maxTrials } : {}),
  };
  const dir = sweepDir(spec, options.runsDir);
  const statePath = options.statePath ?? join(dir, 'state.json');
  const executor = new LocalProcessExecutor({ command: options.command, trialsDir: join(dir, 'trials'), extraArgs: options.runArgs ?? [] });
  try {
    const result = await runSweep(spec, {
      executor,
      statePath,
      tracking: sweepTracking(spec, base, options),
      ...(options.log ? { log: options.log } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onUpdate ? { onUpdate: options.onUpdate } : {}),
    });
    return { ...result, spec, statePath };
  } finally {
    await executor.close();
  }
}

/**
 * The sweep's run goes where a run of its base experiment goes: the same local store root and,
 * from the experiment's `tracking` section (or MLFLOW_TRACKING_URI), the same MLflow experiment,
 * so MLflow shows the trials nested under it.
 */
export function sweepTracking(
  spec: SweepSpec,
  base: LoadedSweep['base'],
  options: Pick<SweepFileOptions, 'runsDir' | 'createTracker'> = {},
): SweepTrackingOptions {
  const config = base.config as { name?: string; tracking?: TrackingConfig };
  return {
    runsDir: options.runsDir ?? defaultRunsRoot(spec.experiment),
    experiment: config.name ?? 'experiment',
    tracking: config.tracking ?? {},
    locate: base.locate,
    ...(options.createTracker ? { createTracker: options.createTracker } : {}),
  };
}

/**
 * The trials a sweep would start with, without running anything: every grid point, or the
 * first random draws (for bayes, the random startup trials; TPE's later choices depend on results).
 */
export function planTrials(spec: SweepSpec): { params: Params; overrides: string[] }[] {
  const searcher = createSearcher({ method: spec.method, parameters: spec.parameters, seed: spec.seed, goal: spec.objective.goal });
  const count = Math.min(spec.maxTrials, searcher.capacity, spec.method === 'bayes' ? spec.bayes.startupTrials : Infinity);
  return Array.from({ length: count }, (_, i) => {
    const params = searcher.suggest(i, [])!;
    return { params, overrides: [...spec.baseOverrides, ...toOverrides(params)] };
  });
}

/** The trial table as text: one row per trial, best first, then the unfinished ones. */
export function formatSweepTable(state: SweepState, spec: Pick<SweepSpec, 'objective' | 'parameters'>): string {
  const sign = spec.objective.goal === 'maximize' ? -1 : 1;
  const rows = [...state.trials].sort((a, b) => {
    const [x, y] = [a.finalMetric, b.finalMetric];
    if (x === null || y === null) return x === null ? (y === null ? a.index - b.index : 1) : -1;
    return sign * (x - y) || a.index - b.index;
  });
  const headers = ['trial', 'state', spec.objective.metric, 'epochs', ...spec.parameters.map((p) => p.path)];
  const cells = rows.map((t) => [
    t.id,
    t.state,
    t.finalMetric === null ? '-' : formatParam(t.finalMetric),
    String(t.epochs.length),
    ...spec.parameters.map((p) => formatParam(t.params[p.path])),
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

function formatParam(value: unknown): string {
  if (typeof value === 'number') return String(Number(value.toPrecision(4)));
  return value === undefined ? '-' : String(value);
}

/** The command that reruns the best trial on its own. */
export function reproduceCommand(state: SweepState, spec: SweepSpec, cwd = process.cwd()): string | null {
  const best = bestTrial(state, spec);
  if (!best) return null;
  const quote = (arg: string) => (/^[\w.,=+\-/:@]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
  return ['exp run', quote(relative(cwd, spec.experiment) || spec.experiment), ...best.overrides.map((o) => `--set ${quote(o)}`)].join(' ');
}
