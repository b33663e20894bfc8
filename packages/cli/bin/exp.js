#!/usr/bin/env node
// The `exp` command of an installed Tessera: the CLI built to dist/ (`pnpm build`). In the
// repository, `pnpm exp` runs the TypeScript source under tsx instead, with no build.
try {
  await import('../dist/bin.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/bin.js')) throw error;
  process.stderr.write('exp: the CLI is not built (no packages/cli/dist/); run `pnpm build`, or `pnpm exp` to run it from source\n');
  process.exitCode = 1;
}
