// Fault: configs built to exhaust the loader (issue 17, item 7): a 50 MB YAML, 20,000 nested
// parentheses, 39 levels of doubling variables (text and lists). Each is a located exit-2 error
// within seconds, never a stack overflow or "Invalid string length" after gigabytes.
import { mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../test-helpers.ts';
import { SMOKE } from './helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-fault-bombs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function timed(args: string[]) {
  const started = Date.now();
  const result = await runCli(args);
  return { ...result, seconds: (Date.now() - started) / 1000 };
}

describe('fault: config bombs', () => {
  it('a 50 MB YAML is refused at once (size limit), located', async () => {
    const file = join(work, 'huge.yaml');
    const fd = openSync(file, 'w');
    writeSync(fd, 'name: huge\nvars:\n');
    const chunk = Array.from({ length: 10_000 }, (_, i) => `  v${i}_K: ${i}\n`).join('');
    let size = 0;
    for (let k = 0; size < 50 * 1024 * 1024; k++) size += writeSync(fd, chunk.replaceAll('_K', `_${k}`));
    closeSync(fd);
    const result = await timed(['validate', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/huge\.yaml:1:1 ".*huge\.yaml" is 50\.\d MB, over the 10\.0 MB limit for config files; set TESSERA_MAX_CONFIG_BYTES/);
    // Parsing 50 MB of YAML would take far longer and gigabytes; refusing it takes one stat. The bound is
    // loose so that a loaded CI machine starting Node slowly cannot fail it.
    expect(result.seconds).toBeLessThan(20);
  });

  // Below the size limit, loading is linear in the file: 2 x 100,000 keys merged through extends took
  // far longer when the location map copied and filtered the whole map per merged key, and 200,000
  // keys in one mapping minutes when yaml's own duplicate-key check compared each key with every
  // earlier one. Here they take seconds; the bound (and the test's timeout above it) only has to tell
  // seconds from minutes on a loaded machine.
  it('200,000 keys through extends load and validate (linear location mapping); TESSERA_MAX_CONFIG_BYTES moves the limit', async () => {
    const keys = (prefix: string) => Array.from({ length: 100_000 }, (_, i) => `  ${prefix}${i}: ${i}\n`).join('');
    writeFileSync(join(work, 'many-base.yaml'), `vars:\n${keys('b')}`);
    const file = join(work, 'many.yaml');
    writeFileSync(file, `extends: [${SMOKE}, many-base.yaml]\nvars:\n${keys('c')}`);
    const result = await timed(['validate', file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.seconds).toBeLessThan(100);
    process.env.TESSERA_MAX_CONFIG_BYTES = '1000000';
    try {
      const limited = await runCli(['validate', file]);
      expect(limited.code).toBe(2);
      expect(limited.stderr).toMatch(/many\.yaml:1:1 ".*many\.yaml" is 1\.\d MB, over the 1\.0 MB limit for config files/);
    } finally {
      delete process.env.TESSERA_MAX_CONFIG_BYTES;
    }
  }, 300_000);

  it('200,000 keys in one mapping with the last one written twice: located at that line, in seconds', async () => {
    const file = join(work, 'duplicate.yaml');
    writeFileSync(file, `name: x\nvars:\n${Array.from({ length: 200_000 }, (_, i) => `  v${i}: ${i}\n`).join('')}  v7: again\n`);
    const result = await timed(['validate', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/duplicate\.yaml:200003:3 duplicate key "v7"; each key may appear once in a mapping/);
    expect(result.seconds).toBeLessThan(100);
  }, 300_000);

  it('20,000 nested parentheses in ${...}: a located error about the nesting depth', async () => {
    const file = join(work, 'parens.yaml');
    writeFileSync(file, `name: x\nvars:\n  a: \${${'('.repeat(20_000)}1${')'.repeat(20_000)}}\n`);
    const result = await timed(['validate', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/parens\.yaml:3:6 vars\.a: expression nested more than 100 levels deep/);
    expect(result.stderr).not.toMatch(/RangeError|Maximum call stack/);
    expect(result.stderr.length).toBeLessThan(2000);
  });

  it('39 levels of doubling text variables: a located error at the level that passes the value size limit', async () => {
    const file = join(work, 'double.yaml');
    const lines = ['name: x', 'vars:', '  v0: ab', ...Array.from({ length: 39 }, (_, i) => `  v${i + 1}: \${v${i}}\${v${i}}`)];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const result = await timed(['validate', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/double\.yaml:26:8 vars\.v23: the text built here would be 16777216 characters, over the limit of 10000000/);
  });

  it('39 levels of doubling list variables (shared references): a located error, not gigabytes at write time', async () => {
    const file = join(work, 'double-list.yaml');
    const lines = ['name: x', 'vars:', '  v0: [1, 2]', ...Array.from({ length: 39 }, (_, i) => `  v${i + 1}: ['\${v${i}}', '\${v${i}}']`)];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const result = await timed(['validate', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/double-list\.yaml:\d+:8 vars\.v2\d: this value expands to more than 10000000 items and characters/);
  });
});
