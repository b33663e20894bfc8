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

process.exitCode = await main(process.argv.slice(2));
