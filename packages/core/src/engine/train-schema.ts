import type { JsonSchema } from '../registry/registry.ts';
import { METRIC_NAMES } from './metrics.ts';
import type { EntryConfig } from '../schema/types.ts';

/**
 * The `train` section, minus the entries it refers to: `optimizer`, `schedule` and each
 * `callbacks` item are registry entries whose schemas the assembler puts under `$defs`
 * (`#/$defs/optimizer`, `#/$defs/schedule`, `#/$defs/callback`), like `#/$defs/transform`.
 */
export const trainSectionSchema: JsonSchema = {
  type: 'object',
  description: 'How to train: epochs, batch size, optimizer, schedule, loss, metrics, callbacks.',
  additionalProperties: false,
  required: ['epochs', 'batch_size', 'optimizer'],
  properties: {
    epochs: { type: 'integer', minimum: 1, description: 'Passes over the training split.' },
    batch_size: { type: 'integer', minimum: 1, description: 'Examples per optimizer step.' },
    steps_per_epoch: {
      type: 'integer', minimum: 1,
      description: 'Stop each epoch after this many steps (default: the whole training split).',
    },
    eval_batch_size: { type: 'integer', minimum: 1, description: 'Batch size for validation and test (default: batch_size).' },
    optimizer: { $ref: '#/$defs/optimizer' },
    schedule: { $ref: '#/$defs/schedule', description: 'Learning-rate schedule (default: constant).' },
    loss: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: {
        type: { const: 'sparse_categorical_crossentropy', description: 'Cross-entropy against class indices (or soft labels from mixup/cutmix).' },
        from_logits: { type: 'boolean', default: true, description: 'The model outputs logits (otherwise probabilities).' },
        label_smoothing: { type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0, description: 'Targets become (1-s)*one_hot + s/classes.' },
      },
    },
    metrics: {
      type: 'array',
      items: { enum: [...METRIC_NAMES] },
      uniqueItems: true,
      default: [...METRIC_NAMES],
      description: 'Reported for train (running), validation and test; the loss is always reported.',
    },
    callbacks: { type: 'array', items: { $ref: '#/$defs/callback' }, default: [] },
  },
};

/** The validated `train` section. */
export interface TrainConfig {
  epochs: number;
  batch_size: number;
  steps_per_epoch?: number;
  eval_batch_size?: number;
  optimizer: EntryConfig;
  schedule?: EntryConfig;
  loss?: { type: 'sparse_categorical_crossentropy'; from_logits?: boolean; label_smoothing?: number };
  metrics?: (typeof METRIC_NAMES)[number][];
  callbacks?: EntryConfig[];
}

/** Splits `{type, ...params}` into the type and the params the entry's create() receives. */
export function entryParams({ type, ...params }: EntryConfig): [string, Record<string, unknown>] {
  return [type, params];
}
