import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { builtinRegistries } from '@tessera/builtins';
import { loadedPlugins, loadPlugins } from '@tessera/core';
import { runCli } from '../test-helpers.ts';

/*
 * Plugins from the command line: the example plugin (examples/plugins/affine.ts) loads from an
 * experiment's `plugins:`, from a project's tessera.config.yaml and from --plugin; its block
 * shows in exp blocks, exp schema and exp summary, and trains. A missing or failing plugin is a
 * located error with exit status 2.
 */

const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const AFFINE = join(ROOT, 'examples', 'plugins', 'affine.ts');
const EXAMPLE = join(ROOT, 'examples', 'plugins', 'resmlp.yaml');
const work = mkdtempSync(join(tmpdir(), 'tessera-plugins-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(() => {
  for (const name of Object.keys(process.env).filter((key) => key.startsWith('MLFLOW_'))) vi.stubEnv(name, undefined);
});
afterAll(() => vi.unstubAllEnvs());

const exp = (argv: string[], cwd = ROOT) => runCli(argv, { cwd, registries: builtinRegistries });

/** The example experiment with its `plugins:` line replaced, written to `dir/name`. */
function experimentWith(dir: string, name: string, pluginsLine: string): string {
  mkdirSync(dir, { recursive: true });
  const text = readFileSync(EXAMPLE, 'utf8').replace('plugins: [./affine.ts]', pluginsLine);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('plugins', () => {
  it('the example runs end to end from the CLI: its experiment lists ./affine.ts', async () => {
    const { code, stdout, stderr } = await exp(['run', EXAMPLE, '--runs-dir', join(work, 'runs')]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const test = stdout.split('\n').find((line) => line.startsWith('test'))!;
    expect(Number(test.trim().split(/\s+/)[2])).toBeGreaterThan(0.9);
    // A resumed run (fresh registries, no experiment file) loads the plugin its saved config names.
    const id = /Run (\S+) FINISHED/.exec(stdout)![1]!;
    const resumed = await exp(['run', '--resume', id, '--epochs', '4', '--runs-dir', join(work, 'runs')]);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/FINISHED: 4 epoch/);
  });

  it('shows the plugin block in exp summary, exp blocks --plugin and exp schema --plugin', async () => {
    const summary = await exp(['summary', EXAMPLE]);
    expect(summary.code).toBe(0);
    expect(summary.stdout).toMatch(/block_1\/token_mixing\/affine_1 \(ExampleAffine\)\s+\(None, 4, 32\)\s+64/);
    const blocks = await exp(['blocks', '--plugin', 'examples/plugins/affine.ts', 'affine']);
    expect(blocks.code).toBe(0);
    expect(blocks.stdout).toContain("ResMLP's Affine");
    const schema = await exp(['schema', '--plugin', 'examples/plugins/affine.ts']);
    const types = (JSON.parse(schema.stdout) as { $defs: { block: { anyOf: { properties: { type: { const: string } } }[] } } }).$defs.block.anyOf.map(
      (branch) => branch.properties.type.const,
    );
    expect(types).toContain('affine');
    expect((await exp(['schema'])).stdout).not.toContain('"affine"');
  });

  it("loads a project's tessera.config.yaml plugins for every experiment below it", async () => {
    const project = join(work, 'project');
    const file = experimentWith(join(project, 'experiments'), 'resmlp.yaml', '');
    expect((await exp(['validate', file])).stderr).toContain('unknown block type "affine"');
    writeFileSync(join(project, 'tessera.config.yaml'), `plugins:\n  - ${AFFINE}\n`);
    const { code, stdout } = await exp(['validate', file]);
    expect(code).toBe(0);
    expect(stdout).toContain('ok');
    // exp blocks in the project sees it too.
    expect((await exp(['blocks', 'affine'], project)).code).toBe(0);
    // An exported model names the project's plugin (absolute), so predict and serve load it again.
    const exported = await exp(['export', file, '--init', '--out', join(project, 'model')]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(project, 'model', 'model.json'), 'utf8')).userDefinedMetadata.tessera.plugins).toEqual([AFFINE]);
  });

  it('resolves a base file\'s plugin relative to the base file', async () => {
    const dir = join(work, 'extends');
    experimentWith(join(dir, 'base'), 'resmlp.yaml', `plugins: [${JSON.stringify(AFFINE)}]`);
    mkdirSync(join(dir, 'base', 'lib'), { recursive: true });
    writeFileSync(join(dir, 'base', 'lib', 'affine.ts'), `export { register } from ${JSON.stringify(AFFINE)};\n`);
    writeFileSync(join(dir, 'base', 'resmlp.yaml'), readFileSync(join(dir, 'base', 'resmlp.yaml'), 'utf8').replace(/^plugins: .*$/m, 'plugins: [./lib/affine.ts]'));
    writeFileSync(join(dir, 'child.yaml'), 'extends: [base/resmlp.yaml]\nname: child\n');
    const { code, stderr } = await exp(['validate', join(dir, 'child.yaml')]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('a missing plugin is a located error, exit status 2', async () => {
    const file = experimentWith(join(work, 'missing'), 'x.yaml', 'plugins:\n  - ./nowhere.ts');
    const { code, stderr } = await exp(['run', file, '--runs-dir', join(work, 'runs')]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${file}:10:5 plugins[0]: plugin "./nowhere.ts" not found (looked for ${join(work, 'missing', 'nowhere.ts')})`);
    expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it.each([
    ['throws while loading', 'throw new Error("boom at load");\n', 'failed to load: boom at load'],
    ['throws while registering', 'export function register() { throw new Error("bad entry"); }\n', 'failed to register: bad entry'],
    ['exports no register', 'export const x = 1;\n', 'exports no register(registries) function'],
    [
      'registers a name that is taken',
      'export default { register: (r) => r.blocks.register({ type: "dense", description: "", params: {}, create() {} }) };\n',
      'failed to register: block type "dense" is already registered',
    ],
  ])('a plugin that %s gives exit status 2 with the plugin path', async (_label, source, message) => {
    const dir = join(work, `bad-${message.length}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'bad.mjs'), source);
    const file = experimentWith(dir, 'x.yaml', 'plugins: [./bad.mjs]');
    for (const command of ['run', 'validate', 'summary']) {
      const { code, stderr } = await exp([command, file, '--runs-dir', join(work, 'runs')].slice(0, command === 'run' ? 4 : 2));
      expect(code).toBe(2);
      expect(stderr).toContain(`${file}:9:11 plugins[0]: plugin "./bad.mjs" ${message}`);
    }
  });

  it('loads a module once per registries, however often it is listed', async () => {
    const registries = builtinRegistries();
    const ref = { path: AFFINE, baseDir: ROOT, yamlPath: ['plugins', 0] };
    expect(await loadPlugins(registries, [ref, ref])).toEqual([AFFINE]);
    expect(await loadPlugins(registries, [ref])).toEqual([]);
    expect(loadedPlugins(registries)).toEqual([AFFINE]);
    expect(registries.blocks.has('affine')).toBe(true);
    // Another registries object gets its own registration from the same module.
    const other = builtinRegistries();
    await loadPlugins(other, [ref]);
    expect(other.blocks.has('affine')).toBe(true);
  });
});
