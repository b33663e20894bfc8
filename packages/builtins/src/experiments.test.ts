import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadExperiment, validateExperiment } from '@tessera/core';
import { builtinRegistries } from './registries.ts';

/*
 * The three reference experiments share one backbone (experiments/base/backbone.yaml) and state
 * only their block. Their resolved configs (`exp config --json`) must be what they were when each
 * file spelled the whole model out: __fixtures__/resolved/*.json were captured from that version
 * (commit 3ac52af), as loaded (extends merged, expressions evaluated), before the validator
 * writes in the defaults. The only addition is the backbone's block slot, `model.vars.block`.
 */
const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
const registries = builtinRegistries();

describe('the reference experiments on the shared backbone', () => {
  it.each([
    ['mixer', 'mixer_block'],
    ['fnet', 'fnet_block'],
    ['gmlp', 'gmlp_block'],
  ])('%s resolves to the config it had before the backbone, plus its block slot', (name, block) => {
    const loaded = loadExperiment(repo(`experiments/${name}.yaml`));
    const before = JSON.parse(readFileSync(new URL(`./__fixtures__/resolved/${name}.json`, import.meta.url), 'utf8'));
    const config = structuredClone(loaded.config) as { model: { vars: Record<string, unknown> } };
    expect(config.model.vars.block).toBe(block);
    delete config.model.vars.block;
    expect(config).toEqual(before);
    expect(() => validateExperiment(loaded, registries)).not.toThrow();
    expect(loaded.files.map((f) => f.slice(repo('experiments').length + 1))).toEqual([
      'base/cifar100.yaml',
      'base/train.yaml',
      'base/backbone.yaml',
      `${name}.yaml`,
    ]);
  });
});
