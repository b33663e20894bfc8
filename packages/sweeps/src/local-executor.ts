import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { assertSafeName, containedJoin, currentHolder, readMetrics, readRunMeta, type LockHolder, type RunMeta } from '@tessera/core';
import type { Executor, TrialLaunch, TrialSink } from './executor.ts';
import { tagEndedRun } from './run-tags.ts';
import type { EpochMetrics } from './state.ts';

export interface LocalExecutorOptions {
  /**
   * The `exp` command line before its subcommand, e.g.
   * `[process.execPath, ...process.execArgv, 'packages/cli/src/bin.ts']`.
   */
  command: readonly string[];
  /** Each attempt records its run under `<trialsDir>/<trial-id>/attempt-<n>/` (its own run store). */
  trialsDir: string;
  /** Extra arguments for every `exp run`, e.g. `['--backend', 'cpu']`. */
  extraArgs?: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** How often a running trial's metrics file is read. */
  pollMs?: number;
  /** After a stop request, how long a trial may take to checkpoint before it is killed outright. */
  killAfterMs?: number;
  /** Start each trial as the leader of its own process group and signal the whole group (queue workers). */
  detached?: boolean;
  /** The signal of a cooperative stop (default SIGTERM; `exp run` treats SIGINT the same way). */
  stopSignal?: NodeJS.Signals;
}

interface Running {
  /** null for a finished run that is only being reported (adopted). */
  child: ChildProcess | null;
  launch: TrialLaunch;
  sink: TrialSink;
  /** The run store root of this attempt, and the run directory once the run exists. */
  root: string;
  runDir: string | null;
  announced: boolean;
  ended: boolean;
  lastEpoch: number;
  stopReason: string | null;
  log: string;
}

/**
 * Runs each trial as an `exp run` child process (a process pool whose size the sweep runner
 * bounds with `parallel`). Progress is read from the run store the child writes: its
 * meta.json and its append-only, fsync'd metrics.jsonl, so the protocol is the run record
 * itself, the same one a queue worker on another machine would produce. A stop is SIGTERM:
 * `exp run` finishes the step, checkpoints and ends the run KILLED; a rerun of an interrupted
 * trial continues from that checkpoint with `exp run --resume`.
 */
export class LocalProcessExecutor implements Executor {
  private readonly running = new Map<string, Running>();

  constructor(private readonly options: LocalExecutorOptions) {}

  async start(launch: TrialLaunch, sink: TrialSink): Promise<void> {
    const attemptDir = containedJoin(this.options.trialsDir, assertSafeName(launch.id, 'trial id'), `attempt-${launch.attempt}`);
    await mkdir(attemptDir, { recursive: true });
    const previous = launch.previousRunId ? await this.previousRun(launch.id, launch.previousRunId) : null;
    if (previous?.status === 'FINISHED') {
      // The run completed after the sweep lost track of it (the sweep process died first):
      // report its record instead of training it again.
      setImmediate(() => void this.adopt(launch, previous.dir, sink));
      return;
    }
    const resumable = previous && (previous.status === 'KILLED' || previous.status === 'RUNNING') && previous.checkpoint ? previous.dir : null;
    if (resumable) {
      // One writer per run: an earlier controller's trial may still be stopping (it watches its
      // controller and checkpoints on its death); its resume waits for it instead of racing it.
      const holder = await waitForRunLockRelease(resumable, this.options.killAfterMs ?? 60_000);
      if (holder) {
        sink.failed(`run ${resumable} is still being written by pid ${holder.pid} on ${holder.host} (${holder.purpose}); not starting a second writer`);
        return;
      }
    }
    // Tags from the start, so MLflow has them as soon as the run exists (and a continued run its new attempt).
    const tags = Object.entries(launch.tags).flatMap(([key, value]) => ['--tag', `${key}=${value}`]);
    const args = resumable
      ? ['run', '--resume', resumable, '--runs-dir', dirname(dirname(resumable)), ...tags]
      : [
          'run',
          launch.experiment,
          ...launch.overrides.flatMap((o) => ['--set', o]),
          '--runs-dir',
          attemptDir,
          ...(launch.parentRunId ? ['--parent-run', launch.parentRunId] : []),
          ...tags,
        ];
    const log = join(attemptDir, 'output.log');
    const fd = openSync(log, 'a');
    const [program, ...prefix] = this.options.command;
    const child = spawn(program!, [...prefix, ...args, ...(this.options.extraArgs ?? [])], {
      cwd: this.options.cwd,
      // The trial watches this process: if it dies (even by SIGKILL), the trial stops too.
      env: { ...process.env, ...this.options.env, CI: 'true', TESSERA_PARENT_PID: String(process.pid) },
      stdio: ['ignore', fd, fd],
      detached: this.options.detached ?? false,
    });
    closeSync(fd);
    const run: Running = {
      child,
      launch,
      sink,
      root: resumable ? dirname(dirname(resumable)) : attemptDir,
      runDir: resumable,
      announced: false,
      ended: false,
      lastEpoch: 0,
      stopReason: null,
      log,
    };
    this.running.set(launch.id, run);

    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      this.poll(run).finally(() => (busy = false));
    }, this.options.pollMs ?? 500);
    child.on('error', (error) => {
      clearInterval(timer);
      this.running.delete(launch.id);
      if (run.ended) return;
      run.ended = true;
      sink.failed(`could not start exp run: ${error.message}`);
    });
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      const wait = async () => {
        while (busy) await new Promise((r) => setTimeout(r, 10));
        await this.finish(run, code, signal);
      };
      void wait();
    });
  }

  stop(trialId: string, reason: string): void {
    const run = this.running.get(trialId);
    if (!run || run.stopReason !== null) return;
    const child = run.child;
    if (!child) return;
    run.stopReason = reason;
    this.signal(child, this.options.stopSignal ?? 'SIGTERM');
    const timer = setTimeout(() => this.signal(child, 'SIGKILL'), this.options.killAfterMs ?? 60_000);
    child.once('exit', () => clearTimeout(timer));
  }

  async close(): Promise<void> {
    for (const run of this.running.values()) if (run.child) this.signal(run.child, 'SIGTERM');
  }

  /** Kills a trial at once, without a checkpoint (a queue worker that lost its lease on it). */
  kill(trialId: string): void {
    const child = this.running.get(trialId)?.child;
    if (child) this.signal(child, 'SIGKILL');
  }

  /** Signals the child, or its whole process group when it leads one. */
  private signal(child: ChildProcess, signal: NodeJS.Signals): void {
    if (!this.options.detached || child.pid === undefined) {
      child.kill(signal);
      return;
    }
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the group has exited already
    }
  }

  /** An earlier attempt's run: where it is, how it ended, whether it left a checkpoint. */
  private async previousRun(trialId: string, runId: string): Promise<{ dir: string; status: RunMeta['status']; checkpoint: boolean } | null> {
    const trialDir = join(this.options.trialsDir, trialId);
    for (const attempt of await readdir(trialDir).catch(() => [] as string[])) {
      for (const experiment of await readdir(join(trialDir, attempt)).catch(() => [] as string[])) {
        const dir = join(trialDir, attempt, experiment, runId);
        const meta = await readRunMeta(dir).catch(() => null);
        if (meta) return { dir, status: meta.status, checkpoint: existsSync(join(dir, 'checkpoint')) };
      }
    }
    return null;
  }

  private async adopt(launch: TrialLaunch, dir: string, sink: TrialSink): Promise<void> {
    const run: Running = {
      child: null,
      launch,
      sink,
      root: dirname(dirname(dir)),
      runDir: dir,
      announced: false,
      ended: false,
      lastEpoch: 0,
      stopReason: null,
      log: join(dirname(dirname(dir)), 'output.log'),
    };
    await this.poll(run);
    await this.finish(run, 0, null);
  }

  /** Reports the run once it exists and every epoch it has logged since the last poll. */
  private async poll(run: Running): Promise<void> {
    run.runDir ??= await findRun(run.root);
    if (!run.runDir) return;
    if (!run.announced) {
      run.announced = true;
      run.sink.started(basename(run.runDir));
    }
    let records;
    try {
      records = await readMetrics(run.runDir);
    } catch {
      return; // a line caught half-written; the next poll reads it whole
    }
    for (const record of records) {
      if (record.step <= run.lastEpoch) continue;
      run.lastEpoch = record.step;
      // The run store merges the end-of-run test metrics into the last epoch's step; they are
      // not an epoch's measurement (they arrive with `finished`).
      const metrics = numbers(record);
      for (const key of Object.keys(metrics)) if (key.startsWith('test_')) delete metrics[key];
      run.sink.epoch(record.step, metrics);
    }
  }

  private async finish(run: Running, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    this.running.delete(run.launch.id);
    if (run.ended) return;
    run.ended = true;
    await this.poll(run).catch(() => {});
    const meta: RunMeta | null = run.runDir ? await readRunMeta(run.runDir).catch(() => null) : null;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (run.runDir && run.stopReason) {
      // The run has ended, so the reason reaches the local store and MLflow from here.
      await tagEndedRun(run.runDir, { 'sweep.stop_reason': run.stopReason }, { env: { ...process.env, ...this.options.env } }).catch(() => {});
    }
    if (meta?.status === 'FINISHED') {
      const records = await readMetrics(run.runDir!).catch(() => []);
      run.sink.finished(records.length > 0 ? numbers(records[records.length - 1]!) : {});
    } else if (meta?.status === 'KILLED' || (run.stopReason !== null && meta?.status !== 'FAILED')) {
      run.sink.killed();
    } else {
      const detail = meta?.error ?? (await lastLines(run.log, 5));
      run.sink.failed(`exp run ended with ${how}${detail ? `: ${detail}` : ''} (log: ${run.log})`);
    }
  }
}

/** Waits until nobody alive holds the run's lock; the holder if one still does after `ms`. */
async function waitForRunLockRelease(dir: string, ms: number): Promise<LockHolder | undefined> {
  for (const deadline = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 250))) {
    const holder = await currentHolder(dir);
    if (!holder || Date.now() > deadline) return holder;
  }
}

/** The one run directory (`<root>/<experiment>/<run-id>/meta.json`) in an attempt's run store. */
async function findRun(root: string): Promise<string | null> {
  for (const experiment of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!experiment.isDirectory()) continue;
    for (const run of await readdir(join(root, experiment.name)).catch(() => [] as string[])) {
      const dir = join(root, experiment.name, run);
      if (existsSync(join(dir, 'meta.json'))) return dir;
    }
  }
  return null;
}

function numbers(record: Record<string, unknown>): EpochMetrics {
  const out: EpochMetrics = {};
  for (const [k, v] of Object.entries(record)) if (k !== 'step' && typeof v === 'number') out[k] = v;
  return out;
}

async function lastLines(file: string, count: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-count).join(' | ');
}
