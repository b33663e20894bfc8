import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinRegistries } from '@tessera/builtins';
import { readMetrics, runExperiment } from '@tessera/core';

const EXAMPLE = import.meta.dirname;
const ROOT = join(EXAMPLE, '../..');
const PACKAGES = readdirSync(join(ROOT, 'packages'));
const work = mkdtempSync(join(tmpdir(), 'tessera-library-use-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The environment of a project outside this repository: no "@tessera/source" condition. */
function plainEnv(): NodeJS.ProcessEnv {
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(/--conditions=@tessera\/source/g, '').trim();
  return { ...process.env, NODE_OPTIONS: nodeOptions, NO_COLOR: '1' };
}

/** The packages' dist/ must exist (`pnpm build`; .ci/run builds before the tests). */
function requireBuilt(context: { skip: (note?: string) => never }): void {
  const missing = PACKAGES.filter((name) => !existsSync(join(ROOT, 'packages', name, 'dist', 'index.js')));
  if (missing.length === 0) return;
  const reason = `packages not built (${missing.join(', ')}): run \`pnpm build\` first`;
  if (process.env.CI === 'true') throw new Error(reason);
  context.skip(reason);
}

function* files(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) yield* files(join(dir, entry.name));
    else yield join(dir, entry.name);
  }
}

describe('examples/library-use: Tessera as a dependency of another program', () => {
  it('trains the smoke experiment from its own script under plain Node, on the built packages, exactly as from source', async (context) => {
    requireBuilt(context);
    const runsDir = join(work, 'runs');
    const result = spawnSync(process.execPath, ['train.mjs', '--backend', 'cpu', '--runs-dir', runsDir], {
      cwd: EXAMPLE,
      env: plainEnv(),
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(result.stderr).not.toMatch(/Error|tsx/);
    expect(result.status).toBe(0);
    const { summary, core } = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as {
      summary: { status: string; backend: string; runDir: string; history: Record<string, number>[]; test: Record<string, number> };
      core: string;
    };
    // The program resolved Tessera to the JavaScript build, not the TypeScript source.
    expect(relative(ROOT, new URL(core).pathname)).toBe(join('packages', 'core', 'dist', 'index.js'));
    expect(summary.status).toBe('FINISHED');
    expect(summary.backend).toBe('cpu');
    expect(summary.history).toHaveLength(3);
    // experiments/smoke.yaml's header: test accuracy > 0.9 (chance 0.25).
    expect(summary.test.test_accuracy).toBeGreaterThan(0.9);
    expect((await readMetrics(summary.runDir)).some((record) => record.test_accuracy === summary.test.test_accuracy)).toBe(true);

    // The same experiment run in this process from source: the build changes no number.
    const output = { write: () => true };
    const fromSource = await runExperiment(join(ROOT, 'experiments', 'smoke.yaml'), {
      registries: builtinRegistries(),
      backend: 'cpu',
      runsDir: join(work, 'source-runs'),
      progress: 'none',
      output,
    });
    const numbers = (history: Record<string, number>[]) => history.map(({ images_per_second, epoch_time, ...rest }) => rest);
    expect(numbers(summary.history)).toEqual(numbers(fromSource.history));
    expect(summary.test).toEqual(fromSource.test);
  });

  it('the built `exp` bin runs without tsx', (context) => {
    requireBuilt(context);
    const exp = join(ROOT, 'node_modules', '.bin', 'exp');
    const result = spawnSync(exp, ['validate', join(ROOT, 'experiments', 'smoke.yaml')], { cwd: work, env: plainEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^ok .*smoke\.yaml/);
    expect(result.status).toBe(0);
  });

  it('the built JavaScript imports .js files and the declarations type-check a consumer', (context) => {
    requireBuilt(context);
    const leftovers: string[] = [];
    for (const name of PACKAGES) {
      for (const file of files(join(ROOT, 'packages', name, 'dist'))) {
        if (!file.endsWith('.js')) continue;
        // A relative import still naming a .ts file would fail at run time outside tsx.
        for (const line of readFileSync(file, 'utf8').split('\n')) {
          if (/^\s*(\*|\/\/)/.test(line)) continue; // comments quote source
          for (const match of line.matchAll(/(?:from |import\()\s*["'](\.{1,2}\/[^"']+\.ts)["']/g)) leftovers.push(`${relative(ROOT, file)}: ${match[1]}`);
        }
      }
    }
    expect(leftovers).toEqual([]);

    // The example's own tsconfig (NodeNext, no source condition), with the declarations checked
    // too: an error in any dist/*.d.ts of ours or in train.mjs fails; TF.js's own are not ours.
    const tsc = spawnSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(EXAMPLE, 'tsconfig.json'), '--skipLibCheck', 'false'], {
      cwd: EXAMPLE,
      encoding: 'utf8',
      timeout: 120_000,
    });
    const ours = tsc.stdout.split('\n').filter((line) => /^\S+\(\d+,\d+\): error/.test(line) && !line.includes('node_modules/'));
    expect(ours).toEqual([]);
  });
});
