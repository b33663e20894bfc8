// A stand-in for `exp run` that writes a run record the way the local run store does:
// `exp run FILE [--set K=V]... --runs-dir DIR [--parent-run ID] [--tag K=V]...` or
// `exp run --resume RUNDIR --runs-dir DIR [--tag K=V]...`.
// FAKE_EPOCHS epochs (default 3), FAKE_EPOCH_MS apart; val_loss = scale / epoch (`--set scale=2`,
// default 1); `--parent-run ID` is recorded in meta.json like the run store does; SIGTERM ends the
// run KILLED (exit 130); `--set fail=true` ends it FAILED at epoch 2; `--set crash=true` exits 2
// before any run exists, like a config error.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const option = (name) => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []));
const sets = Object.fromEntries(option('--set').map((s) => s.split('=')));
if (sets.crash === 'true') {
  console.error('experiments/x.yaml:3:5 train.epochs: expected an integer, got string "x"');
  process.exit(2);
}
const resume = option('--resume')[0];
const dir = resume ?? join(option('--runs-dir')[0], 'fake', `run-${process.pid}`);
mkdirSync(join(dir, 'checkpoint'), { recursive: true });
const metaPath = join(dir, 'meta.json');
const parentRunId = option('--parent-run')[0];
const meta = existsSync(metaPath)
  ? JSON.parse(readFileSync(metaPath, 'utf8'))
  : { runId: `run-${process.pid}`, experiment: 'fake', ...(parentRunId ? { parentRunId } : {}) };
const writeMeta = (status, extra = {}) => writeFileSync(metaPath, JSON.stringify({ ...meta, status, ...extra }));
writeMeta('RUNNING');
const tags = Object.fromEntries(option('--tag').map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]));
writeFileSync(join(dir, 'tags.json'), JSON.stringify({ 'tessera.seed': '1', 'fake.args': args.join(' '), ...tags }));
const lines = existsSync(join(dir, 'metrics.jsonl')) ? readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean) : [];
let epoch = lines.length;
const epochs = Number(process.env.FAKE_EPOCHS ?? 3);
const scale = Number(sets.scale ?? 1);
process.on('SIGTERM', () => {
  writeMeta('KILLED');
  process.exit(130);
});
const tick = () => {
  epoch++;
  if (sets.fail === 'true' && epoch === 2) {
    writeMeta('FAILED', { error: 'loss is NaN at epoch 2, step 7' });
    process.exit(1);
  }
  appendFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: epoch, time: '', val_loss: scale / epoch })}\n`);
  if (epoch < epochs) return setTimeout(tick, Number(process.env.FAKE_EPOCH_MS ?? 50));
  appendFileSync(join(dir, 'metrics.jsonl'), `${JSON.stringify({ step: epoch, time: '', test_loss: 0.5 })}\n`);
  writeMeta('FINISHED');
};
setTimeout(tick, Number(process.env.FAKE_EPOCH_MS ?? 50));
