import { Rng } from '../../random/index.ts';
import { wasmLoader } from '../loaders.ts';

/** Loads the wasm backend through its loader (which installs this folder's kernels), or fails the suite with the loader's reason. */
export async function loadWasmBackend(): Promise<void> {
  const result = await wasmLoader.load({});
  if (!result.ok) throw new Error(result.why);
}

/** Deterministic normal values (the seeded Rng), so a failure reproduces. */
export function randomValues(size: number, seed: number, scale = 1, offset = 0): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: size }, () => offset + scale * rng.normal());
}
