export { SEED_STREAMS, childSeed, deriveSeed, fmix32, fnv1a, layerSeed, stepSeed } from './seeds.ts';
export { Rng, withSeededRandom } from './rng.ts';
export { fingerprint, stableJson } from './fingerprint.ts';
