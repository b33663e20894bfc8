// Fault: an experiment `name` that is a path (issue 17, item 4). It must be refused as a
// located, exit-2 config error, from the file and from --set, and nothing may be written outside
// --runs-dir.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../test-helpers.ts';
import { SMOKE } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-fault-names-'));
const runsDir = join(work, 'deep', 'a', 'b', 'c', 'runs');
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('fault: the experiment name escapes the run store', () => {
  it('`name: ../../../../elsewhere/x` in the file is a located exit-2 error; nothing is written anywhere', async () => {
    const file = join(work, 'escape.yaml');
    writeFileSync(file, `extends: ${SMOKE}\nname: ../../../../elsewhere/x\n`);
    const result = await runCli(['run', file, '--runs-dir', runsDir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/escape\.yaml:2:7 name: string "\.\.\/\.\.\/\.\.\/\.\.\/elsewhere\/x" cannot be a name: it contains a path separator/);
    expect(existsSync(join(work, 'elsewhere'))).toBe(false);
    expect(existsSync(join(work, 'deep', 'elsewhere'))).toBe(false);
    expect(existsSync(runsDir)).toBe(false);
  });

  it('the same through --set, and a name that is only dots', async () => {
    for (const name of ['../../../../elsewhere/x', '..', '/tmp/abs']) {
      const result = await runCli(['run', SMOKE, '--runs-dir', runsDir, '--set', `name=${name}`]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`"--set name=${name}"`);
      expect(result.stderr).toMatch(/cannot be a name: it (contains a path separator|starts with ".")/);
    }
    expect(existsSync(join(work, 'elsewhere'))).toBe(false);
    expect(existsSync(runsDir) ? readdirSync(runsDir) : []).toEqual([]);
  });
});
