import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listRunDirs, runsToSync } from './sync.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'tessera-sync-list-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A run directory with the meta.json the local store writes (only what listing reads). */
function run(store: string, experiment: string, runId: string, extra: Record<string, unknown> = {}): string {
  const dir = join(store, experiment, runId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ runId, experiment, runName: runId, status: 'FINISHED', startTime: '2026-01-01T00:00:00Z', ...extra }));
  return dir;
}

describe('listRunDirs / runsToSync: every local run, sweep trials included', () => {
  it('finds the runs of the root and of every sweep attempt store, oldest id first; sync order puts parents first and skips synced runs', async () => {
    const uri = 'http://mlflow.test:5000';
    const plain = run(root, 'other', '20260101-000000-oooooo');
    writeFileSync(join(plain, 'mlflow.json'), JSON.stringify({ [uri]: { trackingUri: uri, runId: 'abc', experimentName: 'other', pending: false, outbox: [] } }));
    const parent = run(root, 'fake', '20260101-000002-pppppp');
    mkdirSync(join(parent, 'checkpoint', 'nested'), { recursive: true }); // not a run
    const trials = join(root, 'sweeps', 'grid', 'trials');
    // A trial run whose id sorts before its sweep's run (started within the same second, or clocks apart).
    const early = run(join(trials, 'trial-000', 'attempt-1'), 'fake', '20260101-000001-aaaaaa', { parentRunId: '20260101-000002-pppppp' });
    const retried = run(join(trials, 'trial-000', 'attempt-2'), 'fake', '20260101-000003-bbbbbb', { parentRunId: '20260101-000002-pppppp' });
    const other = run(join(trials, 'trial-001', 'attempt-1'), 'fake', '20260101-000004-cccccc', { parentRunId: '20260101-000002-pppppp' });
    // What else a sweep folder holds: the trial table, an attempt's log, an attempt whose run never started.
    writeFileSync(join(root, 'sweeps', 'grid', 'state.json'), '{}');
    writeFileSync(join(trials, 'trial-000', 'attempt-1', 'output.log'), '');
    mkdirSync(join(trials, 'trial-002', 'attempt-1'), { recursive: true });

    expect(await listRunDirs({ root })).toEqual([plain, early, parent, retried, other]);
    expect(await listRunDirs({ root, experiment: 'fake' })).toEqual([early, parent, retried, other]);
    expect(await listRunDirs({ root, experiment: 'other' })).toEqual([plain]);
    expect(await runsToSync(uri, { root })).toEqual([parent, early, retried, other]);
    // Another server has none of them.
    expect(await runsToSync('http://elsewhere:5000', { root })).toEqual([plain, parent, early, retried, other]);
    expect(await listRunDirs({ root: join(root, 'missing') })).toEqual([]);
  });
});
