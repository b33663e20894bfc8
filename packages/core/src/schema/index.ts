export { experimentSchema, editorSchema, ENTRY_KINDS, type EntryKind } from './experiment-schema.ts';
export { validateExperiment, validateExperimentPart, experimentValidator, editorValidator, effectiveConfig, explainErrors, validateDocument, type Locator } from './validate.ts';
export { varsSchema, modelSectionSchema, trackingSectionSchema, topLevelProperties, REQUIRED_TOP_LEVEL } from './sections.ts';
export type { ExperimentConfig, ModelConfig, BlockTemplateConfig, EntryConfig, TrackingConfig } from './types.ts';
