import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts'],
    // TF.js kernels are slow on 2 CPU cores; real-data and server tests need room.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    maxWorkers: 2,
    // .ci/run asks for a JSON report too, to print the closing "N passed, N failed" line.
    reporters: process.env.TESSERA_TEST_REPORT ? ['default', 'json'] : ['default'],
    outputFile: process.env.TESSERA_TEST_REPORT ? { json: process.env.TESSERA_TEST_REPORT } : {},
  },
});
