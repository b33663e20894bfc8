export { experimentSchema, editorSchema, ENTRY_KINDS, type EntryKind } from './experiment-schema.ts';
export { validateExperiment, validateExperimentPart, experimentValidator, editorValidator, explainErrors, type Locator } from './validate.ts';
export * from './sections.ts';
export type * from './types.ts';
