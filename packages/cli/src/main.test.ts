import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRegistries } from '@tessera/core';
import { defineCommand, commandHelp } from './command.ts';
import { reportError } from './main.ts';
import { runCli } from './test-helpers.ts';

const ROOT = join(import.meta.dirname, '../../..');
const FIXTURES = join(import.meta.dirname, 'commands/__fixtures__');
const empty = () => createRegistries();

describe('exp', () => {
  it('lists the commands with their summaries under --help, exit 0', async () => {
    const { code, stdout } = await runCli(['--help'], { registries: empty });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^exp \d+\.\d+\.\d+: /);
    expect(stdout).toContain('Usage: exp <command> [arguments] [options]');
    expect(stdout).toMatch(/\n {2}validate +Check experiment files/);
    expect(stdout).toMatch(/\n {2}config +Print the resolved config/);
    expect(stdout).toContain('Run "exp help <command>" (or "exp <command> --help")');
  });

  it('prints the version', async () => {
    expect((await runCli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('gives a command its own help: usage, arguments, options with defaults, examples', async () => {
    const { code, stdout } = await runCli(['config', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: exp config FILE \[options\]\n/);
    expect(stdout).toMatch(/Arguments:\n {2}FILE +Experiment YAML file/);
    expect(stdout).toMatch(/--set KEY=VALUE +Override a config value/);
    expect(stdout).toMatch(/--json +Print JSON instead of YAML/);
    expect(stdout).toMatch(/Examples:\n {2}\$ exp config experiments\/smoke.yaml\n/);
    // -h anywhere on the line means help, even after arguments; `exp help config` too.
    expect((await runCli(['config', 'x.yaml', '-h'])).stdout).toBe(stdout);
    expect((await runCli(['help', 'config'])).stdout).toBe(stdout);
  });

  it.each([
    [['confg'], 'exp: unknown command "confg" (did you mean "config"?); commands: validate, config'],
    [['validate', 'x.yaml', '--sett', 'a=1'], 'exp validate: unknown option "--sett" (did you mean "--set"?)'],
    [['validate'], 'exp validate: missing FILE'],
    [['config', 'a.yaml', 'b.yaml'], 'exp config: unexpected argument "b.yaml"'],
    [['config', 'a.yaml', '--set'], 'exp config: option "--set" needs a value (KEY=VALUE)'],
    [['blocks', '--kind', 'layer'], 'exp blocks: unknown kind "layer"; kinds: block, dataset'],
    [['--bogus'], 'exp: unknown option "--bogus"'],
  ])('treats a bad command line %j as a usage error, exit 2', async (argv, message) => {
    const { code, stderr } = await runCli(argv, { registries: empty });
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr).toMatch(/Run "exp( \w+)? --help" for usage\.\n$/);
  });

  it('prints an unexpected error in one line with a --debug hint and exits 1', async () => {
    const command = defineCommand({ name: 'boom', summary: '', positionals: [], options: {}, examples: [], run: async () => { throw new Error('disk on fire\nsecond line'); } });
    let stderr = '';
    const context = { stderr: { write: (t: string) => (stderr += t) }, cwd: '/', debug: false };
    expect(reportError(new Error('disk on fire\nsecond line'), command.name, context)).toBe(1);
    expect(stderr).toBe('exp boom: disk on fire\n(run with --debug for the stack)\n');
    stderr = '';
    const cause = new Error('root cause');
    expect(reportError(new Error('outer', { cause }), 'boom', { ...context, debug: true })).toBe(1);
    expect(stderr).toMatch(/^exp boom: Error: outer\n\s+at .*\ncaused by:\nError: root cause\n\s+at /s);
  });

  it('renders help for a command table entry from its spec', () => {
    const help = commandHelp(
      defineCommand({
        name: 'demo',
        summary: 'Demo',
        positionals: [{ name: 'FILE', variadic: true, description: 'Inputs' }],
        options: { level: { type: 'string', short: 'l', default: 'info', placeholder: 'LEVEL', description: 'Log level' } },
        examples: [['exp demo a b', 'Two files']],
        run: async () => {},
      }),
    );
    expect(help).toBe(
      [
        'Usage: exp demo FILE... [options]',
        '',
        'Demo',
        '',
        'Arguments:',
        '  FILE...  Inputs',
        '',
        'Options:',
        '  -l, --level LEVEL  Log level (default: "info")',
        '      --debug        Show stack traces and causes for unexpected errors',
        '  -h, --help         Show help',
        '',
        'Examples:',
        '  $ exp demo a b',
        '      Two files',
        '',
      ].join('\n'),
    );
  });
});

describe('the exp binary', () => {
  const tsx = join(ROOT, 'node_modules/.bin/tsx');
  const bin = join(ROOT, 'packages/cli/src/bin.ts');
  const { FORCE_COLOR: _force, ...env } = process.env;
  const exp = (...argv: string[]) => spawnSync(tsx, [bin, ...argv], { cwd: FIXTURES, encoding: 'utf8', timeout: 120_000, env: { ...env, NO_COLOR: '1' } });

  it('colours a terminal only: FORCE_COLOR styles the location, path and verdict', () => {
    const result = spawnSync(tsx, [bin, 'validate', 'bad/zero-size.yaml', 'good.yaml'], { cwd: FIXTURES, encoding: 'utf8', timeout: 120_000, env: { ...env, FORCE_COLOR: '1' } });
    expect(result.stdout).toBe('\x1b[32mok\x1b[39m good.yaml\n');
    expect(result.stderr).toMatch(/^\x1b\[36mbad\/zero-size.yaml:5:28\x1b\[39m \x1b\[1mmodel.layers\[1\].units\x1b\[22m: expected /);
  });

  it('exits 0 and prints ok for a valid file', () => {
    const result = exp('validate', 'good.yaml');
    expect([result.status, result.stdout, result.stderr]).toEqual([0, 'ok good.yaml\n', '']);
  });

  it('exits 2 with the located message and no stack for a bad file', () => {
    const result = exp('validate', 'bad/zero-size.yaml');
    expect(result.status).toBe(2);
    expect(result.stderr).toBe('bad/zero-size.yaml:5:28 model.layers[1].units: expected a value >= 1, got 0\nFAIL bad/zero-size.yaml (1 error)\n');
  });

  it('exits 1 for an unexpected failure, with the stack only under --debug', () => {
    const plain = exp('schema', '--out', 'no/such/dir/schema.json');
    expect(plain.status).toBe(1);
    expect(plain.stderr).toMatch(/^exp schema: ENOENT: no such file or directory.*\n\(run with --debug for the stack\)\n$/);
    const debug = exp('schema', '--out', 'no/such/dir/schema.json', '--debug');
    expect(debug.status).toBe(1);
    expect(debug.stderr).toMatch(/\n\s+at .*schema\.ts/);
  });
});
