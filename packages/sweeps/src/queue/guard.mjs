// guard.mjs COMMAND [ARG]...: runs COMMAND and kills it when this guard's parent dies.
//
// A queue worker starts each trial through this guard, as the leader of a new process group
// (spawn `detached`). The trial then lives outside the worker's group, so a Ctrl-C aimed at the
// worker's terminal does not hit it and the worker alone decides how to stop it (SIGINT to the
// group: checkpoint and exit 130). If the worker dies without cleaning up (kill -9 of its group,
// OOM killer), nothing else would stop the orphaned trial, which would keep writing to a run that
// another worker is about to resume; the guard notices that its parent is gone and kills its group.
// Plain JavaScript so it starts without a TypeScript loader.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: guard.mjs COMMAND [ARG]...');
  process.exit(2);
}
const parent = process.ppid;
const child = spawn(command, args, { stdio: 'inherit' });

const killAll = () => {
  try {
    process.kill(-process.pid, 'SIGKILL'); // the whole group, this guard included
  } catch {
    child.kill('SIGKILL'); // not a group leader (started without `detached`)
    process.exit(137);
  }
};
// A signal sent to the group reaches the child directly; the guard outlives it to report its exit.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => {});
const watch = setInterval(() => {
  if (process.ppid !== parent) killAll();
}, 100);
child.on('error', (error) => {
  clearInterval(watch);
  console.error(`guard.mjs: cannot start ${command}: ${error.message}`);
  process.exit(127);
});
child.on('exit', (code, signal) => {
  clearInterval(watch);
  process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
});
