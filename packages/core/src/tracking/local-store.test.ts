import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRunStore, findRunDir, readMetrics, readRunMeta } from './local-store.ts';
import { combineTrackers, flattenParams, type Tracker } from './tracker.ts';

const root = mkdtempSync(join(tmpdir(), 'tessera-runs-'));
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('LocalRunStore', () => {
  it('records params, tags, metrics, artifacts and the final status as plain files', async () => {
    const store = new LocalRunStore(root);
    const run = await store.startRun({ experiment: 'exp1', tags: { a: '1' } });
    expect(run.dir).toBe(join(root, 'exp1', run.runId));
    await store.logParams({ 'train.epochs': 3 });
    await store.logParams({ seed: 1 });
    await store.setTags({ b: '2' });
    await store.logMetrics({ loss: 2 }, 1);
    await store.logMetrics({ loss: 1.5, val_loss: 1.7 }, 2);
    await store.logArtifact('model/model.json', { bytes: '{}' });
    await store.endRun('FINISHED');
    expect(JSON.parse(readFileSync(join(run.dir!, 'params.json'), 'utf8'))).toEqual({ 'train.epochs': 3, seed: 1 });
    expect(JSON.parse(readFileSync(join(run.dir!, 'tags.json'), 'utf8'))).toEqual({ a: '1', b: '2' });
    expect(readFileSync(join(run.dir!, 'artifacts', 'model', 'model.json'), 'utf8')).toBe('{}');
    expect((await readMetrics(run.dir!)).map(({ step, loss }) => [step, loss])).toEqual([[1, 2], [2, 1.5]]);
    const meta = await readRunMeta(run.dir!);
    expect(meta.status).toBe('FINISHED');
    expect(meta.endTime).toBeDefined();
    await expect(store.logArtifact('../escape', { bytes: 'x' })).rejects.toThrow(/bad artifact path/);
  });

  it('resumes a run by id: same directory, RUNNING again, metrics appended; a repeated step wins', async () => {
    const first = new LocalRunStore(root);
    const run = await first.startRun({ experiment: 'exp2' });
    await first.logMetrics({ loss: 3 }, 1);
    await first.endRun('KILLED', 'stopped');
    const second = new LocalRunStore(root);
    const resumed = await second.startRun({ experiment: 'exp2', resumeRunId: run.runId });
    expect(resumed.dir).toBe(run.dir);
    const meta = await readRunMeta(run.dir!);
    expect(meta.status).toBe('RUNNING');
    expect(meta.error).toBeUndefined();
    expect(meta.resumedAt).toHaveLength(1);
    await second.logMetrics({ loss: 2.5 }, 1);
    await second.logMetrics({ loss: 2 }, 2);
    expect((await readMetrics(run.dir!)).map((m) => m.loss)).toEqual([2.5, 2]);
    expect(await findRunDir(run.dir!, root)).toBe(run.dir);
    await expect(findRunDir('nope', root)).rejects.toThrow(/no run "nope" found/);
  });

  it('ignores nothing it wrote: every metrics line is one JSON object', async () => {
    const store = new LocalRunStore(root);
    const run = await store.startRun({ experiment: 'exp3' });
    await store.logMetrics({ a: 1 }, 1);
    appendFileSync(join(run.dir!, 'metrics.jsonl'), '\n');
    expect(await readMetrics(run.dir!)).toHaveLength(1);
  });
});

describe('trackers', () => {
  it('flattens nested params the MLflow way', () => {
    expect(flattenParams({ train: { epochs: 3, metrics: ['accuracy'], callbacks: [{ type: 'x' }] }, seed: 1 })).toEqual({
      'train.epochs': 3,
      'train.metrics': '["accuracy"]',
      'train.callbacks.0.type': 'x',
      seed: 1,
    });
  });

  it('combineTrackers forwards every call to each tracker', async () => {
    const calls: string[] = [];
    const fake = (name: string): Tracker => ({
      startRun: async () => (calls.push(`${name}.start`), { runId: name, experiment: 'e' }),
      logParams: async () => void calls.push(`${name}.params`),
      logMetrics: async (_m, step) => void calls.push(`${name}.metrics${step}`),
      setTags: async () => void calls.push(`${name}.tags`),
      logArtifact: async () => void calls.push(`${name}.artifact`),
      endRun: async (status) => void calls.push(`${name}.${status}`),
    });
    const both = combineTrackers(fake('a'), fake('b'));
    expect((await both.startRun({ experiment: 'e' })).runId).toBe('a');
    await both.logMetrics({ x: 1 }, 4);
    await both.endRun('FAILED');
    expect(calls).toEqual(['a.start', 'b.start', 'a.metrics4', 'b.metrics4', 'a.FAILED', 'b.FAILED']);
  });
});

describe('LocalRunStore: torn writes, names, one writer', () => {
  it('reads past a torn last line of metrics.jsonl, reports it, and a resume repairs it before appending', async () => {
    const store = new LocalRunStore(root);
    const run = await store.startRun({ experiment: 'torn' });
    await store.logMetrics({ loss: 2 }, 1);
    await store.logMetrics({ loss: 1 }, 2);
    await store.endRun('KILLED');
    appendFileSync(join(run.dir!, 'metrics.jsonl'), '{"step":3,"time":"2026-01-01T00:00:00Z","lo');
    const torn: unknown[] = [];
    expect((await readMetrics(run.dir!, 'metrics.jsonl', (t) => torn.push(t))).map((r) => r.step)).toEqual([1, 2]);
    expect(torn).toEqual([expect.objectContaining({ line: 3, text: '{"step":3,"time":"2026-01-01T00:00:00Z","lo' })]);
    const notes: string[] = [];
    const resumed = new LocalRunStore(root, { log: (m) => notes.push(m) });
    await resumed.startRun({ experiment: 'torn', resumeRunId: run.runId });
    expect(notes.join('\n')).toMatch(/metrics.jsonl:3: cut off a torn last line/);
    await resumed.logMetrics({ loss: 0.5 }, 3);
    await resumed.endRun('FINISHED');
    expect(readFileSync(join(run.dir!, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([1, 2, 3]);
  });

  it('refuses an experiment name that is a path', async () => {
    const store = new LocalRunStore(root);
    await expect(store.startRun({ experiment: '../../elsewhere' })).rejects.toThrow('experiment name "../../elsewhere" cannot name a directory');
  });

  it('a run being written cannot be resumed by a second writer; after endRun it can', async () => {
    const first = new LocalRunStore(root);
    const run = await first.startRun({ experiment: 'locked' });
    await expect(new LocalRunStore(root).startRun({ experiment: 'locked', resumeRunId: run.runId })).rejects.toThrow(/being written by another process: exp run, pid/);
    await first.endRun('KILLED');
    const second = new LocalRunStore(root);
    await second.startRun({ experiment: 'locked', resumeRunId: run.runId });
    await second.endRun('FINISHED');
  });
});
