import { wasmLoader } from '../loaders.ts';

/** Loads the wasm backend through its loader (which installs this folder's kernels), or fails the suite with the loader's reason. */
export async function loadWasmBackend(): Promise<void> {
  const result = await wasmLoader.load({});
  if (!result.ok) throw new Error(result.why);
}

/** Deterministic normal-ish values (mulberry32 + Box-Muller), so a failure reproduces. */
export function randomValues(size: number, seed: number, scale = 1, offset = 0): Float32Array {
  let state = seed | 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return Float32Array.from({ length: size }, () => offset + scale * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}
