export { experimentSchema, editorSchema, ENTRY_KINDS, type EntryKind } from './experiment-schema.ts';
export { validateExperiment, loadValidatedExperiment, experimentValidator, editorValidator, effectiveConfig, explainErrors } from './validate.ts';
export * from './sections.ts';
export type * from './types.ts';
