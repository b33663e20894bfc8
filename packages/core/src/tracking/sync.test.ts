import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MlflowClient, Run } from '@tessera/mlflow';
import { findRunDir } from './local-store.ts';
import { listRunDirs, readSyncStates, resolveCreateRace, runsToSync } from './sync.ts';

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
    // A run id finds its run wherever listing finds it: a sweep's trial (its best, for exp register) too.
    for (const dir of [plain, parent, early, retried, other]) expect(await findRunDir(dir.split('/').at(-1)!, root)).toBe(dir);
    await expect(findRunDir('20260101-000009-zzzzzz', root)).rejects.toThrow(/no run "20260101-000009-zzzzzz" found .*sweeps' trials/);
  });
});

describe('resolveCreateRace (two hosts created a run for one local run at once)', () => {
  const run = (runId: string) => ({ info: { runId } }) as Run;
  /** The part of MlflowClient the race needs, over an in-memory list of live runs. */
  function fakeClient(live: string[]): MlflowClient & { deleted: string[] } {
    const deleted: string[] = [];
    return {
      deleted,
      searchAllRuns: async () => live.filter((id) => !deleted.includes(id)).map(run),
      deleteRun: async (id: string) => void deleted.push(id),
      getRun: async (id: string) => run(id),
    } as unknown as MlflowClient & { deleted: string[] };
  }

  it('every racer keeps the run with the smallest id and deletes the others', async () => {
    const client = fakeClient(['b2', 'a1', 'c3']);
    expect((await resolveCreateRace(client, '0', 'local', run('b2'))).info.runId).toBe('a1');
    expect(client.deleted.sort()).toEqual(['b2', 'c3']);
    // The other racer, after: its own run is the survivor; nothing left to delete.
    expect((await resolveCreateRace(client, '0', 'local', run('a1'))).info.runId).toBe('a1');
  });

  it('alone, keeps its run', async () => {
    const client = fakeClient(['x']);
    expect((await resolveCreateRace(client, '0', 'local', run('x'))).info.runId).toBe('x');
    expect(client.deleted).toEqual([]);
  });
});

describe('updateSyncState', () => {
  /** `count` updates of one run's mlflow.json by a process of its own, each adding one artifact digest. */
  function updater(dir: string, uri: string, prefix: string, count: number): Promise<number | null> {
    const module = new URL('./sync.ts', import.meta.url).href;
    const code = `const { updateSyncState } = await import(${JSON.stringify(module)});
      for (let i = 0; i < ${count}; i++) {
        await updateSyncState(${JSON.stringify(dir)}, ${JSON.stringify(uri)}, (s) => ({ trackingUri: ${JSON.stringify(uri)}, experimentName: 'x', pending: false, outbox: [], ...s, artifacts: { ...s?.artifacts, ['${prefix}' + i]: 'd' } }));
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: 'inherit' });
    return new Promise((done) => child.on('close', done));
  }

  it('two processes updating one run at once (two servers, or a live run and exp sync) lose none of each other\'s entries', async () => {
    const dir = run(root, 'e', '20260101-000000-aaaaaa');
    const codes = await Promise.all([updater(dir, 'http://a', 'a', 40), updater(dir, 'http://b', 'b', 40), updater(dir, 'http://a', 'c', 40)]);
    expect(codes).toEqual([0, 0, 0]);
    const states = await readSyncStates(dir);
    expect(Object.keys(states['http://a']!.artifacts!).sort()).toEqual([...Array.from({ length: 40 }, (_, i) => `a${i}`), ...Array.from({ length: 40 }, (_, i) => `c${i}`)].sort());
    expect(Object.keys(states['http://b']!.artifacts!)).toHaveLength(40);
    expect(readdirSync(dir).sort()).toEqual(['meta.json', 'mlflow.json']); // no lock or temp file left
  });
});
