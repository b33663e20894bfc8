import { defineConfig } from 'vitest/config';

// Tests run on source: workspace packages resolve through their "@tessera/source" export
// condition (package.json "exports"; dist/ is for installs). Vite resolves the test files'
// imports with it; NODE_OPTIONS carries it to every process the tests start (`exp` under tsx,
// sweep trials, queue workers).
const SOURCE_CONDITION = '@tessera/source';
if (!process.env.NODE_OPTIONS?.includes(`--conditions=${SOURCE_CONDITION}`)) {
  process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, `--conditions=${SOURCE_CONDITION}`].filter(Boolean).join(' ');
}

// Tests whose assertions depend on leases and timeouts between real processes (Redis workers, exp ui):
// they run last, one file at a time, so a busy neighbour cannot stall a worker past its lease.
const timingSensitive = ['packages/sweeps/src/queue/**/*.test.ts', 'packages/cli/src/commands/worker.test.ts', 'packages/cli/src/commands/ui.browser.test.ts'];
// The fault-injection suite (`pnpm test:faults`; docs/reliability.md): real processes killed,
// frozen and raced against each other. Part of `pnpm test`, last and one file at a time.
const faults = ['packages/*/src/**/*.faults.test.ts'];

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, 'module', 'node', 'development|production'] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, 'module', 'node', 'development|production'], externalConditions: [SOURCE_CONDITION] } },
  test: {
    // TF.js kernels are slow on 2 CPU cores; real-data and server tests need room.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // .ci/run asks for a JSON report too, to print the closing "N passed, N failed" line.
    reporters: process.env.TESSERA_TEST_REPORT ? ['default', 'json'] : ['default'],
    outputFile: process.env.TESSERA_TEST_REPORT ? { json: process.env.TESSERA_TEST_REPORT } : {},
    projects: [
      {
        extends: true,
        test: {
          name: 'tests',
          include: ['packages/*/src/**/*.test.ts', 'examples/*/*.test.ts', 'tests/*.test.ts'],
          exclude: [...timingSensitive, ...faults],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'distributed', include: timingSensitive, exclude: faults, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
      {
        extends: true,
        test: { name: 'faults', include: faults, maxWorkers: 1, sequence: { groupOrder: 2 } },
      },
    ],
  },
});
