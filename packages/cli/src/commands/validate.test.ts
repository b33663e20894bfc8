import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../test-helpers.ts';

const FIXTURES = join(import.meta.dirname, '__fixtures__');
const ROOT = join(import.meta.dirname, '../../../..');
// The TF.js instance core builds with (the cli package does not depend on TF.js itself).
const tf = createRequire(import.meta.resolve('@tessera/core'))('@tensorflow/tfjs') as { memory(): { numTensors: number } };

describe('exp validate builds each model', () => {
  it('accepts every committed experiment, templates included', async () => {
    const files = ['fnet', 'gmlp', 'mixer', 'smoke'].map((name) => `experiments/${name}.yaml`);
    const before = tf.memory().numTensors;
    const result = await runCli(['validate', ...files], { cwd: ROOT });
    expect(result).toEqual({ code: 0, stdout: files.map((f) => `ok ${f}\n`).join(''), stderr: '' });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('disposes what it built: tf.memory().numTensors is the same after a good and a bad file', async () => {
    await runCli(['validate', 'good.yaml'], { cwd: FIXTURES }); // the first build registers the backend
    const before = tf.memory().numTensors;
    expect((await runCli(['validate', 'good.yaml'], { cwd: FIXTURES })).code).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    // Fails at the template's second layer, after its first layer got its weights.
    expect((await runCli(['validate', 'bad/template-unknown-variable.yaml'], { cwd: FIXTURES })).code).toBe(2);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports an error in the model graph after the schema errors of other files', async () => {
    const result = await runCli(['validate', 'bad/zero-size.yaml', 'bad/template-unknown-type.yaml', 'good.yaml'], { cwd: FIXTURES });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('ok good.yaml\n');
    expect(result.stderr.split('\n').filter((line) => line.startsWith('FAIL') || / of \d+ files/.test(line))).toEqual([
      'FAIL bad/zero-size.yaml (1 error)',
      'FAIL bad/template-unknown-type.yaml (1 error)',
      '2 of 3 files failed',
    ]);
  });
});

describe('the README\u2019s error example', () => {
  it('is what exp validate prints for `units: 256x` on FNet\u2019s patch embedding', async () => {
    const example = readFileSync(join(ROOT, 'README.md'), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('experiments/fnet.yaml:') && line.endsWith('"256x"'));
    expect(example).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'tessera-readme-'));
    try {
      cpSync(join(ROOT, 'experiments'), join(dir, 'experiments'), { recursive: true });
      const file = join(dir, 'experiments/fnet.yaml');
      const lines = readFileSync(file, 'utf8').split('\n');
      const at = lines.findIndex((line) => line.includes('name: patch_embedding'));
      lines[at] = lines[at]!.replace(/units: "\$\{embedding_dim\}"/, 'units: 256x');
      expect(lines[at]).toContain('units: 256x');
      writeFileSync(file, lines.join('\n'));
      const result = await runCli(['validate', 'experiments/fnet.yaml'], { cwd: dir });
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toBe(example);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
