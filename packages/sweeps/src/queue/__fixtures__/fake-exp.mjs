// A stand-in for `exp run` for the queue tests, writing a run record the way the local run store
// does: `exp run FILE [--set K=V]... --runs-dir DIR` or `exp run --resume RUNDIR --runs-dir DIR`.
// FAKE_EPOCHS epochs (default 3), FAKE_EPOCH_MS apart (default 50); val_loss = (1 + a) / epoch for
// `--set a=N`; after each epoch it logs the metrics, then "checkpoints" (checkpoint/epoch). SIGINT or
// SIGTERM ends the run KILLED (exit 130) after the current step. Every start appends a line
// {pid, resumed, from, args, gpu} to $FAKE_LOG, so tests can count runs and see resumes.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const option = (name) => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []));
const sets = Object.fromEntries(option('--set').map((s) => s.split('=')));
const resume = option('--resume')[0];
const dir = resume ?? join(option('--runs-dir')[0], 'fake', `run-${process.pid}`);
mkdirSync(join(dir, 'checkpoint'), { recursive: true });
const metaPath = join(dir, 'meta.json');
const meta = existsSync(metaPath)
  ? JSON.parse(readFileSync(metaPath, 'utf8'))
  : { runId: `run-${process.pid}`, experiment: 'fake', a: Number(sets.a ?? 0) };
const writeMeta = (status, extra = {}) => writeFileSync(metaPath, JSON.stringify({ ...meta, status, ...extra }));
const checkpoint = join(dir, 'checkpoint', 'epoch');
let epoch = existsSync(checkpoint) ? Number(readFileSync(checkpoint, 'utf8')) : 0;
if (process.env.FAKE_LOG) {
  const line = { pid: process.pid, run: meta.runId, resumed: Boolean(resume), from: epoch, args, gpu: process.env.CUDA_VISIBLE_DEVICES ?? null };
  appendFileSync(process.env.FAKE_LOG, `${JSON.stringify(line)}\n`);
}
writeMeta('RUNNING');
const epochs = Number(process.env.FAKE_EPOCHS ?? 3);
const every = Number(process.env.FAKE_EPOCH_MS ?? 50);
let stopping = false;
const stop = () => {
  stopping = true;
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
const tick = () => {
  if (stopping) {
    writeMeta('KILLED');
    process.exit(130);
  }
  epoch++;
  appendFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: epoch, time: '', val_loss: (1 + meta.a) / epoch })}\n`);
  writeFileSync(checkpoint, String(epoch));
  if (epoch < epochs) return setTimeout(tick, every);
  writeMeta('FINISHED');
};
setTimeout(tick, every);
