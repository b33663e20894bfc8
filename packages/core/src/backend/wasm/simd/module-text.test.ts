import { readFileSync, writeFileSync } from 'node:fs';
import wabt from 'wabt';
import { describe, expect, it } from 'vitest';
import { simdModuleBytes } from './module.ts';

/*
 * The SIMD kernels are written with the small assembler of assembler.ts (no toolchain needed at
 * run time); their reviewable form is module.wat, the text WABT (the WebAssembly Binary Toolkit,
 * maintained by the WebAssembly group; npm `wabt`) prints for the assembled module. A change to a
 * kernel changes module.wat in the same commit, where a reviewer reads it as WebAssembly text.
 * After changing a kernel on purpose: TESSERA_UPDATE_WAT=1 pnpm exec vitest run <this file>.
 */
const WAT = new URL('./module.wat', import.meta.url);

describe('the SIMD module as reviewable text', () => {
  it('disassembles (WABT) to exactly the committed module.wat', async () => {
    const toolkit = await wabt();
    const module = toolkit.readWasm(simdModuleBytes(), { readDebugNames: false, simd: true });
    try {
      module.validate();
      module.generateNames();
      module.applyNames();
      const text = module.toText({ foldExprs: false, inlineExport: true });
      if (process.env.TESSERA_UPDATE_WAT === '1') writeFileSync(WAT, text);
      expect(text).toBe(readFileSync(WAT, 'utf8'));
    } finally {
      module.destroy();
    }
  });

  it('module.wat is valid WebAssembly text that WABT assembles to the same program', async () => {
    // The same program, not the same bytes: assembler.ts declares each local on its own, WABT
    // groups locals of one type, so only the local declarations are encoded differently.
    const toolkit = await wabt();
    const committed = readFileSync(WAT, 'utf8');
    const parsed = toolkit.parseWat('module.wat', committed, { simd: true });
    try {
      parsed.resolveNames();
      parsed.validate();
      const again = toolkit.readWasm(parsed.toBinary({}).buffer, { readDebugNames: false, simd: true });
      again.generateNames();
      again.applyNames();
      expect(again.toText({ foldExprs: false, inlineExport: true })).toBe(committed);
      again.destroy();
    } finally {
      parsed.destroy();
    }
  });
});
