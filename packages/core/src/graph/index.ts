export { buildModel, disposeModel } from './build.ts';
export type { BuildOptions, ModelSpec, ModelNode, BlockDefinition } from './build.ts';
export { registerCombinators, combinatorEntries, COMBINATOR_TYPES } from './combinators.ts';
export { modelSummary, formatSummary } from './summary.ts';
export type { ModelSummary, SummaryRow } from './summary.ts';
export { exportModel, importModel, directoryHandler, MODEL_FILE, WEIGHTS_FILE } from './io.ts';
export type { ExportMetadata } from './io.ts';
export { predictImages } from './predict.ts';
export type { ImageBatch } from './predict.ts';
