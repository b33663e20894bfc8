// @ts-check
// Tessera as a library: this program depends on @tessera/core and @tessera/builtins like any
// other project would, runs under plain Node (no tsx, the packages' built dist/), and trains the
// smoke experiment through the same function `exp run` calls.
//
// Run:    pnpm build && node examples/library-use/train.mjs [--backend cpu] [--runs-dir DIR]
// Expect: test accuracy > 0.9 after 3 epochs (chance: 0.25), a run record under DIR.
// Time:   ~5 s on 2 CPU cores.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { builtinRegistries } from '@tessera/builtins';
import { isConfigError, runExperiment } from '@tessera/core';

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    'runs-dir': { type: 'string' },
    experiment: { type: 'string', default: fileURLToPath(new URL('../../experiments/smoke.yaml', import.meta.url)) },
  },
});

try {
  const summary = await runExperiment(values.experiment, {
    // The composition root: every built-in block, dataset, transform, optimizer and callback.
    registries: builtinRegistries(),
    ...(values.backend !== undefined ? { backend: values.backend } : {}),
    ...(values['runs-dir'] !== undefined ? { runsDir: values['runs-dir'] } : {}),
    progress: 'none',
  });
  const accuracy = summary.test?.test_accuracy;
  console.log(`${summary.experiment}: ${summary.status} on ${summary.backend}, test accuracy ${accuracy?.toFixed(4)}, run ${summary.runDir}`);
  // The last line, for programs (and the test) that read the result.
  console.log(JSON.stringify({ summary, core: import.meta.resolve('@tessera/core') }));
} catch (error) {
  // A bad experiment file: the located message, exit status 2, as `exp` does.
  if (!isConfigError(error)) throw error;
  console.error(error.message);
  process.exitCode = 2;
}
