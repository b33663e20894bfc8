import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/** The root postinstall (package.json "postinstall"), run as pnpm runs it. */
const script = fileURLToPath(new URL('../../../../scripts/postinstall-native.sh', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-postinstall-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A PATH with every program of the usual one except those named: the compiler "uninstalled". */
function pathWithout(hidden: RegExp): string {
  const bin = join(tmp, `bin-${readdirSync(tmp).length}`);
  mkdirSync(bin);
  const seen = new Set<string>();
  for (const dir of (process.env.PATH ?? '').split(':')) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (seen.has(name) || hidden.test(name)) continue;
      seen.add(name);
      symlinkSync(join(dir, name), join(bin, name));
    }
  }
  return bin;
}

/** A tfjs-node folder as pnpm leaves it: built (addon + setup-tensorflow's marker) or not. */
function tfjsNode(built: boolean): string {
  const dir = join(tmp, `tfjs-node-${readdirSync(tmp).length}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), '{"name": "@tensorflow/tfjs-node"}');
  if (built) {
    mkdirSync(join(dir, 'deps'));
    writeFileSync(join(dir, 'deps', 'TESSERA_TF_VERSION'), '2.19.1\n');
    mkdirSync(join(dir, 'lib', 'napi-v8'), { recursive: true });
    writeFileSync(join(dir, 'lib', 'napi-v8', 'tfjs_binding.node'), '');
  }
  return dir;
}

function run(env: Record<string, string>) {
  const result = spawnSync('bash', [script], { env: { HOME: tmp, TESSERA_CACHE: join(tmp, 'cache'), ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, lines: result.stdout.split('\n').filter(Boolean), stderr: result.stderr };
}

describe('postinstall: the native backend on `pnpm install`', () => {
  it('without a C++ compiler: one line saying why and how to retry, exit 0 (the install goes on)', () => {
    const PATH = pathWithout(/^(g\+\+|c\+\+|gcc|cc|make)(-[\d.]+)?$|-linux-gnu-(g\+\+|gcc)/);
    const { status, lines, stderr } = run({ PATH, TESSERA_TFJS_NODE_DIR: tfjsNode(false) });
    expect(status).toBe(0);
    expect(stderr).toBe('');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tessera: native backend not built: no g\+\+, make(, [^;]+)? on PATH; training uses the slower wasm backend\. To build it: install them .*then run `pnpm setup:tensorflow`$/);
  });

  it('without pip: names it', () => {
    const python = join(tmp, 'python-without-pip');
    writeFileSync(python, '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const { status, lines } = run({ PATH: process.env.PATH!, PYTHON: python, TESSERA_TFJS_NODE_DIR: tfjsNode(false) });
    expect(status).toBe(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/no pip \(.*python-without-pip -m pip\) on PATH; training uses the slower wasm backend/);
  });

  it('already built: silent and quick; TESSERA_SKIP_NATIVE=1: one line', () => {
    expect(run({ PATH: process.env.PATH!, TESSERA_TFJS_NODE_DIR: tfjsNode(true) })).toEqual({ status: 0, lines: [], stderr: '' });
    const skipped = run({ PATH: process.env.PATH!, TESSERA_SKIP_NATIVE: '1', TESSERA_TFJS_NODE_DIR: tfjsNode(false) });
    expect(skipped.status).toBe(0);
    expect(skipped.lines).toEqual(['tessera: native backend not built (TESSERA_SKIP_NATIVE=1); training uses wasm. To build it: pnpm setup:tensorflow']);
  });

  it('a build that fails: one line with the reason, exit 0', () => {
    // tfjs-node without node-pre-gyp beside it: setup-tensorflow.sh stops with an error.
    const { status, lines } = run({ PATH: process.env.PATH!, TESSERA_TFJS_NODE_DIR: tfjsNode(false), PYTHON: 'python3' });
    expect(status).toBe(0);
    expect(lines[0]).toMatch(/^tessera: building the native TensorFlow backend/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^tessera: native backend build failed \(.+\); training uses wasm\. Fix that, then run `pnpm setup:tensorflow` \(log: .*setup-tensorflow\.log\)$/);
  });
});
