/**
 * THE node type: a registry entry as written in YAML, `{type: dense, units: 64, name?: ...}`:
 * a model's layers and combinators, the dataset, a transform, an optimizer, a schedule, a callback.
 */
export interface EntryConfig {
  type: string;
  [param: string]: unknown;
}

/** A reusable definition under `model.blocks`: its layers are templates over `params`. */
export interface BlockTemplateConfig {
  description?: string;
  params?: Record<string, unknown>;
  layers: EntryConfig[];
}

export interface ModelConfig {
  vars?: Record<string, unknown>;
  blocks?: Record<string, BlockTemplateConfig>;
  layers: EntryConfig[];
}

export interface TrackingConfig {
  uri?: string;
  experiment?: string;
  run_name?: string;
  tags?: Record<string, string>;
  log_every_n_steps?: number;
}

/**
 * A validated experiment (the shape `experimentSchema` checks). Sections owned by other modules
 * stay loosely typed here; they narrow them where they read them (e.g. the engine's TrainConfig).
 */
export interface ExperimentConfig {
  /** Plugin modules (see plugins/plugins.ts); absolute paths once a run has resolved them. */
  plugins?: string[];
  name?: string;
  description?: string;
  seed?: number;
  backend?: string;
  vars?: Record<string, unknown>;
  data: EntryConfig;
  model: ModelConfig;
  train: Record<string, unknown>;
  tracking?: TrackingConfig;
}
