import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRunStore } from '@tessera/core';
import { runCli } from '../test-helpers.ts';

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-runs-'));
const root = join(tmp, 'runs');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A finished run with its params and one epoch of metrics, as exp run records them. */
async function record(name: string, params: Record<string, number | string>, metrics: Record<string, number>, parentRunId?: string): Promise<string> {
  const store = new LocalRunStore(root);
  const run = await store.startRun({ experiment: 'toy', runName: name, ...(parentRunId ? { parentRunId } : {}) });
  await store.logParams(params);
  await store.logMetrics(metrics, 1);
  await store.endRun('FINISHED');
  return run.runId;
}

beforeAll(async () => {
  await record('plain', { 'train.optimizer.learning_rate': 0.001 }, { loss: 2.5, val_loss: 3.9 });
  const sweep = await record('toy-grid', { 'sweep.method': 'grid' }, { best_val_loss: 3.1 });
  await record('trial-000 lr=0.01', { 'train.optimizer.learning_rate': 0.01 }, { loss: 2.1, val_loss: 3.4 }, sweep);
  await record('trial-001 lr=0.003', { 'train.optimizer.learning_rate': 0.003 }, { loss: 2.0, val_loss: 3.1 }, sweep);
});

const exp = (...argv: string[]) => runCli(['runs', '--runs-dir', root, ...argv], { cwd: ROOT });
const names = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s{2,}/)[1]);

describe('exp runs', () => {
  it('draws a sweep\u2019s trials under it, each run with its name', async () => {
    const { code, stdout } = await exp();
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^RUN\s+NAME\s+EXPERIMENT\s+STATUS/);
    expect(names(stdout)).toEqual(['plain', 'toy-grid', 'trial-000 lr=0.01', 'trial-001 lr=0.003']);
    expect(lines[3]).toMatch(/^\u251c\u2500 \d{8}-\d{6}-[0-9a-f]{6}/);
    expect(lines[4]).toMatch(/^\u2514\u2500 /);
  });

  it('--where filters on metrics and params, --sort orders (ascending, or :desc), --columns adds params', async () => {
    const good = await exp('--where', 'val_loss<3.5', '--sort', 'val_loss', '--columns', 'train.optimizer.learning_rate');
    expect(good.code).toBe(0);
    expect(names(good.stdout)).toEqual(['trial-001 lr=0.003', 'trial-000 lr=0.01']);
    expect(good.stdout.split('\n')[0]).toContain('TRAIN.OPTIMIZER.LEARNING_RATE');
    expect(good.stdout.split('\n')[1]).toMatch(/\s0\.003\s/);
    const desc = await exp('--sort', 'val_loss:desc', '--where', 'train.optimizer.learning_rate>=0.003');
    expect(names(desc.stdout)).toEqual(['trial-000 lr=0.01', 'trial-001 lr=0.003']);
    const byName = await exp('--where', 'run_name!=plain', '--sort=-params.train.optimizer.learning_rate');
    expect(names(byName.stdout)).toEqual(['toy-grid', 'trial-000 lr=0.01', 'trial-001 lr=0.003']);
  });

  it('an unknown key or a malformed filter is a clear error with a did-you-mean (exit 2)', async () => {
    const typo = await exp('--where', 'val_los<3');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('no run has a metric, param or field "val_los"; did you mean "val_loss"?');
    const bad = await exp('--where', 'val_loss~3');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('expected KEY OP VALUE with OP one of < <= > >= = !=');
  });

  it('--json gives one object per run, params included', async () => {
    const { stdout } = await exp('--json', '--where', 'val_loss<3.2');
    const rows = stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ runName: 'trial-001 lr=0.003', last: { val_loss: 3.1 }, params: { 'train.optimizer.learning_rate': 0.003 } });
  });

  it('`exp runs --json | head -1` ends quietly: exit 0, no EPIPE trace', async () => {
    // Enough rows to fill the pipe's buffer after the reader has gone.
    const many = join(tmp, 'many');
    const store = new LocalRunStore(many);
    for (let i = 0; i < 300; i++) {
      await store.startRun({ experiment: 'toy', runName: `run-${i}-${'x'.repeat(200)}` });
      await store.endRun('FINISHED');
    }
    const child = spawn(process.execPath, ['--import', 'tsx', 'packages/cli/src/bin.ts', 'runs', '--json', '--runs-dir', many], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const firstLine = await new Promise<string>((done) => {
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('\n')) {
          child.stdout.destroy(); // what `head -1` does once it has its line
          done(text.split('\n')[0]!);
        }
      });
    });
    const code = await new Promise<number | null>((done) => child.once('exit', (c) => done(c)));
    expect(JSON.parse(firstLine).experiment).toBe('toy');
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  }, 60_000);
});
