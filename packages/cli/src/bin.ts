#!/usr/bin/env node
import { main } from './main.ts';

// `exp runs --json | head -1`: the reader closing the pipe is how such a pipeline ends, not an
// error, so stop quietly (exit 0, as `seq 1000000 | head -1` does) instead of printing an EPIPE trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

const argv = process.argv.slice(2);
process.exitCode = await main(argv);
// A run or a worker that has returned is done: a handle left open (a data worker after a failure,
// a connection retrying a Redis or MLflow server that is gone) must not keep the process alive.
// Unref'd, so it fires only if something still holds the process; the exit code is main's.
if (argv[0] === 'run' || argv[0] === 'worker') setTimeout(() => process.exit(), 2_000).unref();
