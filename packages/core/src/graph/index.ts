export { buildModel, layerSeed } from './build.ts';
export type { BuildOptions, ModelSpec, ModelNode, BlockDefinition } from './build.ts';
export { registerCombinators, combinatorEntries, COMBINATOR_TYPES } from './combinators.ts';
export { modelSummary, formatSummary } from './summary.ts';
export type { ModelSummary, SummaryRow } from './summary.ts';
