import { createRequire } from 'node:module';
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
