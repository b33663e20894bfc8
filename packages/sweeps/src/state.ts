import { readFile } from 'node:fs/promises';
import { redactSecrets, writeJsonAtomic } from '@tessera/core';
import type { Params } from './space.ts';

/**
 * PENDING: created, waiting for a slot. RUNNING: handed to the executor. FINISHED: completed, its
 * objective known. FAILED: the run errored. PRUNED: stopped by the early-termination rule (its
 * tracked run ends KILLED with the reason as a tag). KILLED: stopped from outside (the sweep was
 * interrupted), so it is rerun on resume.
 */
export type TrialState = 'PENDING' | 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED' | 'PRUNED';

export type EpochMetrics = Record<string, number>;

export interface Trial {
  /** `trial-007`: stable, sortable, used as the run's `sweep.trial` tag. */
  id: string;
  index: number;
  params: Params;
  /** `--set` arguments applying `params` to the base experiment (in the state file: secrets masked). */
  overrides: string[];
  state: TrialState;
  attempts: number;
  /** The tracked run of the latest attempt, once the executor reports it. */
  runId: string | null;
  /** `epochs[e - 1]`: every metric reported after epoch e. */
  epochs: EpochMetrics[];
  /** The objective value, once FINISHED or PRUNED. */
  finalMetric: number | null;
  /** Why a trial was pruned, killed or failed. */
  reason: string | null;
}

export interface SweepState {
  version: 1;
  name: string;
  /** A hash of everything that decides the trials' params; resume refuses a different one. */
  fingerprint: string;
  /** The sweep's own tracked run (every trial's run is its child), found again on resume. */
  runId?: string;
  trials: Trial[];
}

export const TERMINAL_STATES: readonly TrialState[] = ['FINISHED', 'PRUNED', 'FAILED'];

export function trialId(index: number): string {
  return `trial-${String(index).padStart(3, '0')}`;
}

export function newState(name: string, fingerprint: string): SweepState {
  return { version: 1, name, fingerprint, trials: [] };
}

/**
 * The resume rule. FINISHED and PRUNED trials are never repeated. RUNNING (the sweep process
 * died under it) and KILLED (the sweep was interrupted) go back to PENDING; so does FAILED while
 * it has attempts left. Their params stay as stored, so a resumed sweep runs exactly the trials
 * the first one planned. Returns the trials that will run again.
 */
export function prepareResume(state: SweepState, maxAttempts: number): Trial[] {
  const rerun: Trial[] = [];
  for (const trial of state.trials) {
    const retry = trial.state === 'FAILED' && trial.attempts < maxAttempts;
    if (trial.state === 'RUNNING' || trial.state === 'KILLED' || retry) trial.state = 'PENDING';
    if (trial.state === 'PENDING') rerun.push(trial);
  }
  return rerun;
}

/** Records epoch e's metrics; a restarted attempt reporting epoch 1 again drops the stale tail. */
export function recordEpoch(trial: Trial, epoch: number, metrics: EpochMetrics): void {
  trial.epochs = trial.epochs.slice(0, Math.max(0, epoch - 1));
  while (trial.epochs.length < epoch - 1) trial.epochs.push({});
  trial.epochs.push({ ...metrics });
}

/** The objective metric's curve, epochs that did not report it skipped. */
export function curveOf(trial: Trial, metric: string): number[] {
  return trial.epochs.map((e) => e[metric]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

/**
 * Writes the state atomically: a crash leaves the old file or the new one, never half of one.
 * A trial's `--set` arguments are written with secrets masked (the one redaction function): the
 * runner launches a trial with overrides made again from its params and the sweep command's own
 * `--set`, never from this file.
 */
export async function saveState(file: string, state: SweepState): Promise<void> {
  await writeJsonAtomic(file, { ...state, trials: state.trials.map((trial) => ({ ...trial, overrides: redactSecrets(trial.overrides) })) });
}

/** The saved state, or null when there is none yet. */
export async function loadState(file: string): Promise<SweepState | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const state = JSON.parse(text) as SweepState;
  if (state.version !== 1 || !Array.isArray(state.trials)) {
    throw new Error(`${file}: not a sweep state file (version ${String(state.version)})`);
  }
  return state;
}

