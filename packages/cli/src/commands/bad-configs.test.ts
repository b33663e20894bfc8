import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../test-helpers.ts';

/*
 * Every file under __fixtures__/bad has exactly one mistake (several-errors.yaml has three).
 * Each goes through the real CLI code path (`main` with argv) against the built-in registries
 * and must exit 2 with the exact location and the gist of the message, and no stack trace.
 */
const FIXTURES = join(import.meta.dirname, '__fixtures__');

interface Case {
  /** Fixture under __fixtures__ (bad/ ones), or good.yaml with `args`. */
  file: string;
  args?: string[];
  /** The first error's location: `bad/x.yaml:3:11`, or `"--set ..."` for an override. */
  at: string;
  /** The first error's path and message, after the location. */
  gist: RegExp;
}

const CASES: Case[] = [
  // YAML itself
  { file: 'bad/malformed-flow.yaml', at: 'bad/malformed-flow.yaml:4:1', gist: /^invalid YAML: Flow sequence .* must .* end with a \]/ },
  { file: 'bad/bad-indentation.yaml', at: 'bad/bad-indentation.yaml:3:11', gist: /^invalid YAML: .*; check the indentation/ },
  { file: 'bad/tab-indentation.yaml', at: 'bad/tab-indentation.yaml:3:1', gist: /^invalid YAML: Tabs are not allowed as indentation/ },
  { file: 'bad/duplicate-key.yaml', at: 'bad/duplicate-key.yaml:4:1', gist: /^duplicate key "seed"; each key may appear once/ },
  { file: 'bad/billion-laughs.yaml', at: 'bad/billion-laughs.yaml:4:10', gist: /^aliases expand to too many nodes .*"billion laughs"/ },
  { file: 'bad/multiple-documents.yaml', at: 'bad/multiple-documents.yaml:2:1', gist: /^more than one YAML document/ },
  { file: 'bad/empty.yaml', at: 'bad/empty.yaml:1:1', gist: /^the file is empty; expected a mapping/ },
  { file: 'bad/top-level-list.yaml', at: 'bad/top-level-list.yaml:1:1', gist: /^expected a mapping of experiment keys .* at the top level, got a list$/ },
  { file: 'bad/non-utf8.yaml', at: 'bad/non-utf8.yaml:3:6', gist: /^invalid UTF-8 \(byte 0xe9 at offset 35\)/ },
  // extends
  { file: 'bad/missing-extends.yaml', at: 'bad/missing-extends.yaml:1:11', gist: /^extends\[0\]: base file "..\/god.yaml" not found .*; did you mean ".*good.yaml"\?$/ },
  { file: 'bad/extends-not-a-path.yaml', at: 'bad/extends-not-a-path.yaml:1:10', gist: /^extends: expected a relative path to a base YAML file, got 3$/ },
  { file: 'bad/extends-cycle.yaml', at: 'bad/extends-cycle-other.yaml:4:5', gist: /^extends\[1\]: extends cycle: .*bad\/extends-cycle.yaml -> .*bad\/extends-cycle-other.yaml -> .*bad\/extends-cycle.yaml$/ },
  // variables and expressions
  { file: 'bad/unknown-variable.yaml', at: 'bad/unknown-variable.yaml:4:29', gist: /^model.layers\[0\].size: unknown variable "patch_sise" in "\$\{patch_sise\}"; did you mean "patch_size"\?$/ },
  { file: 'bad/variable-cycle.yaml', at: 'bad/variable-cycle.yaml:3:10', gist: /^vars.width: variable cycle: width -> height -> width$/ },
  { file: 'bad/expression-syntax.yaml', at: 'bad/expression-syntax.yaml:3:11', gist: /^vars.tokens: expected "\)" before the end in "\$\{\(64 \/ patch_size \*\* 2\}"$/ },
  { file: 'bad/division-by-zero.yaml', at: 'bad/division-by-zero.yaml:3:11', gist: /^vars.tokens: division by zero in / },
  { file: 'bad/unknown-function.yaml', at: 'bad/unknown-function.yaml:3:9', gist: /^vars.side: unknown function "sqr" .*; did you mean "sqrt"\?$/ },
  { file: 'bad/string-plus-number.yaml', at: 'bad/string-plus-number.yaml:2:7', gist: /^name: cannot add string and number/ },
  { file: 'bad/vars-not-a-mapping.yaml', at: 'bad/vars-not-a-mapping.yaml:2:7', gist: /^vars: expected a mapping of variable names to values, got a list of 2 items$/ },
  // the schema
  { file: 'bad/wrong-type-units.yaml', at: 'bad/wrong-type-units.yaml:5:28', gist: /^model.layers\[1\].units: expected an integer, got string "256x"$/ },
  { file: 'bad/wrong-type-epochs.yaml', at: 'bad/wrong-type-epochs.yaml:3:11', gist: /^train.epochs: expected an integer, got string "ten"$/ },
  { file: 'bad/float-for-integer.yaml', at: 'bad/float-for-integer.yaml:5:28', gist: /^model.layers\[0\].units: expected an integer, got 33.33333\d*; computed by "\$\{width \/ 3\}" where width = 100/ },
  { file: 'bad/unknown-key.yaml', at: 'bad/unknown-key.yaml:4:21', gist: /^model.layers\[0\].unit: unknown key "unit" for block type "dense"; did you mean "units"\? \(valid keys: type, name, units, / },
  { file: 'bad/unknown-top-level-key.yaml', at: 'bad/unknown-top-level-key.yaml:2:1', gist: /^trian: unknown key "trian"; did you mean "train"\?/ },
  { file: 'bad/unknown-block-type.yaml', at: 'bad/unknown-block-type.yaml:5:14', gist: /^model.layers\[1\].type: unknown block type "dens"; did you mean "dense"\? \(valid block types: .*dense, drop_path, dropout/ },
  { file: 'bad/unknown-transform-type.yaml', at: 'bad/unknown-transform-type.yaml:5:14', gist: /^data.transforms\[1\].type: unknown transform type "random_flp"; did you mean "random_flip"\?/ },
  { file: 'bad/missing-type.yaml', at: 'bad/missing-type.yaml:4:7', gist: /^model.layers\[0\]: missing required key "type" \(which block this is\); valid block types: / },
  { file: 'bad/missing-required-param.yaml', at: 'bad/missing-required-param.yaml:5:7', gist: /^model.layers\[1\]: missing required key "units" for block type "dense"$/ },
  { file: 'bad/zero-size.yaml', at: 'bad/zero-size.yaml:5:28', gist: /^model.layers\[1\].units: expected a value >= 1, got 0$/ },
  // The value is computed in good.yaml from a variable set in the bad file: the hint says where.
  { file: 'bad/negative-size.yaml', at: 'good.yaml:17:29', gist: /^model.layers\[0\].size: expected a value >= 1, got -4; computed by "\$\{patch_size\}" where patch_size = -4 \(set at .*bad\/negative-size.yaml:2:20\)$/ },
  { file: 'bad/nested-bad-rate.yaml', at: 'bad/nested-bad-rate.yaml:8:33', gist: /^model.layers\[1\].layers\[0\].rate: expected a value < 1, got 1.5$/ },
  { file: 'bad/yes-no-trap.yaml', at: 'bad/yes-no-trap.yaml:5:41', gist: /^model.layers\[1\].use_bias: expected true or false, got string "no"; YAML 1.2 reads no as text; write true or false$/ },
  { file: 'bad/bad-layer-name.yaml', at: 'bad/bad-layer-name.yaml:5:37', gist: /^model.layers\[1\].name: expected a string matching .*, got string "my dense"$/ },
  { file: 'bad/unknown-optimizer.yaml', at: 'bad/unknown-optimizer.yaml:3:21', gist: /^train.optimizer.type: unknown optimizer type "adamm"; did you mean "adam"\? \(valid optimizer types: adam, adamw, sgd\)$/ },
  { file: 'bad/enum-typo.yaml', at: 'bad/enum-typo.yaml:2:10', gist: /^backend: expected one of "auto", .*, got string "wsam"; did you mean "wasm"\?$/ },
  // model.blocks templates: evaluated and checked per instance (worded as anywhere else), before the model is built
  { file: 'bad/template-unknown-type.yaml', at: 'bad/template-unknown-type.yaml:7:18', gist: /^model.blocks.mixing.layers\[0\].type: unknown block type "dens" \(in the instance of block "mixing" called at model.layers\[1\]\); did you mean "dense"\? \(valid block types: / },
  { file: 'bad/template-non-integer.yaml', at: 'bad/template-non-integer.yaml:7:32', gist: /^model.blocks.mixing.layers\[0\].units: expected an integer, got 10.666666666666666 \(in the instance of block "mixing" called at model.layers\[1\].layers\[0\]\); computed by "\$\{dim \/ 3\}" where dim = 32$/ },
  { file: 'bad/template-unknown-block.yaml', at: 'bad/template-unknown-block.yaml:9:27', gist: /^model.layers\[1\].block: no block definition "mixng" under model.blocks; did you mean "mixing"\?$/ },
  { file: 'bad/template-unknown-variable.yaml', at: 'bad/template-unknown-variable.yaml:8:32', gist: /^model.blocks.mixing.layers\[1\].units: in "\$\{hiden\}": unknown variable "hiden" \(in the instance of block "mixing" called at model.layers\[1\]\); did you mean "hidden"\?$/ },
  { file: 'bad/template-call-bad-arg.yaml', at: 'bad/template-call-bad-arg.yaml:10:50', gist: /^model.blocks.mixing.layers\[0\].args.widht: block "projection" has no parameter "widht" \(in the instance of block "mixing" called at model.layers\[1\]\); did you mean "width"\?$/ },
  // overrides
  { file: 'good.yaml', args: ['--set', 'train.epoch=3'], at: '"--set train.epoch=3"', gist: /^train.epoch: no such key to override; did you mean "epochs"\?/ },
  { file: 'good.yaml', args: ['--set', 'train.batch_size=big'], at: '"--set train.batch_size=big"', gist: /^train.batch_size: expected an integer, got string "big"$/ },
  // Names are data, not paths; an empty data.dir would silently mean the experiment's own directory.
  { file: 'good.yaml', args: ['--set', 'name=../../elsewhere'], at: '"--set name=../../elsewhere"', gist: /^name: string "..\/..\/elsewhere" cannot be a name: it contains a path separator; names become one directory/ },
  { file: 'good.yaml', args: ['--set', 'data={type: cifar100, dir: ""}'], at: '"--set data={type: cifar100, dir: \"\"}"', gist: /^data.dir: expected a non-empty string, got string ""$/ },
  { file: 'good.yaml', args: ['--set', 'model.layers[9].units=3'], at: '"--set model.layers[9].units=3"', gist: /^model.layers: index 9 is out of range; the list has 4 items$/ },
  { file: 'good.yaml', args: ['--set', 'seed'], at: '"--set seed"', gist: /^expected KEY=VALUE/ },
];

describe('bad experiment files exit 2 with a located error', () => {
  it('has a good baseline', async () => {
    const result = await runCli(['validate', 'good.yaml'], { cwd: FIXTURES });
    expect(result).toMatchObject({ code: 0, stdout: 'ok good.yaml\n', stderr: '' });
  });

  it.each(CASES.map((c) => [`${c.file} ${(c.args ?? []).join(' ')}`.trim(), c] as const))('%s', async (_, c) => {
    const result = await runCli(['validate', c.file, ...(c.args ?? [])], { cwd: FIXTURES });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const [first, ...rest] = result.stderr.trimEnd().split('\n');
    expect(first!.startsWith(`${c.at} `), `${first} should start with ${c.at}`).toBe(true);
    expect(first!.slice(c.at.length + 1)).toMatch(c.gist);
    expect(rest.at(-1)).toBe(`FAIL ${c.file} (1 error)`);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('reports every schema error of a file at once, in file order', async () => {
    const result = await runCli(['validate', 'bad/several-errors.yaml'], { cwd: FIXTURES });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      [
        'bad/several-errors.yaml:3:11 train.epochs: expected a value >= 1, got 0',
        'bad/several-errors.yaml:4:15 train.batch_size: expected an integer, got string "many"',
        'bad/several-errors.yaml:5:43 train.optimizer.learning_rate: expected a value > 0, got -1',
        'FAIL bad/several-errors.yaml (3 errors)',
        '',
      ].join('\n'),
    );
  });

  it('checks several files, exiting 2 when any fails', async () => {
    const result = await runCli(['validate', 'good.yaml', 'bad/zero-size.yaml', 'bad/empty.yaml'], { cwd: FIXTURES });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('ok good.yaml\n');
    expect(result.stderr).toMatch(/FAIL bad\/zero-size.yaml \(1 error\)\n.*\nFAIL bad\/empty.yaml \(1 error\)\n2 of 3 files failed\n$/);
  });
});

describe('bad data and input files exit 2 like a bad config, naming the file, before anything is recorded', () => {
  it('exp predict with an --input that does not exist: exit 2 before any model is loaded, no raw ENOENT', async () => {
    const result = await runCli(['predict', 'no-such-model', '--input', 'no-such-photo.png'], { cwd: FIXTURES });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/no-such-photo\.png: no such file or folder/);
    expect(result.stderr).not.toMatch(/ENOENT|no-such-model|\n\s+at /);
  });

  it('a truncated CIFAR-100 train.bin', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tessera-bad-data-'));
    try {
      const data = join(work, 'cifar');
      mkdirSync(data);
      // Two whole 3074-byte records and 100 bytes of a third: a download or copy cut short.
      writeFileSync(join(data, 'train.bin'), new Uint8Array(3074 * 2 + 100));
      writeFileSync(join(data, 'test.bin'), new Uint8Array(3074));
      const runsDir = join(work, 'runs');
      const result = await runCli(['run', 'good.yaml', '--runs-dir', runsDir, '--set', 'vars.num_classes=100', '--set', `data={type: cifar100, dir: ${data}}`], { cwd: FIXTURES });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`${join(data, 'train.bin')}: 6248 bytes is not a whole number of 3074-byte CIFAR-100 records`);
      expect(result.stderr).not.toMatch(/\n\s+at |--debug/);
      expect(existsSync(runsDir) ? readdirSync(runsDir) : []).toEqual([]);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
