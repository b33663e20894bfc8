import { SAFE_NAME_PATTERN } from '../safety/paths.ts';
import { BACKEND_REQUESTS } from '../backend/select.ts';
import { trainSectionSchema } from '../engine/train-schema.ts';
import type { JsonSchema } from '../registry/registry.ts';
import { pluginsSchema } from '../plugins/plugins.ts';

/* ------------------------------------------------------------------------------------------ *
 * The top-level sections of an experiment file, one schema each. The assembler               *
 * (`experiment-schema.ts`) puts them under `properties`; entries they refer to are unions     *
 * under `$defs` built from the registries (`#/$defs/block`, `#/$defs/dataset`, ...).          *
 * To refine a section, change its schema here (or import it from the module that owns it).    *
 * ------------------------------------------------------------------------------------------ */

const NAME = '^[A-Za-z_][A-Za-z0-9_]*$';

export const varsSchema: JsonSchema = {
  type: 'object',
  description: 'Variables visible to every ${...} expression (inside `model`, `model.vars` win).',
  propertyNames: { pattern: NAME },
};

/** A template's layers are checked per instance, evaluated (graph/instantiate.ts), not here. */
const templateNode: JsonSchema = {
  type: 'object',
  required: ['type'],
  properties: { type: { type: 'string', description: 'A block type, or a ${...} expression.' } },
};

export const modelSectionSchema: JsonSchema = {
  type: 'object',
  description: 'The model: named reusable blocks and the list of nodes applied in sequence.',
  additionalProperties: false,
  required: ['layers'],
  properties: {
    vars: { ...varsSchema, description: 'Variables visible to expressions inside `model` (they win over top-level vars).' },
    blocks: {
      type: 'object',
      description: 'Named reusable definitions (templates), instantiated with {type: call, block: <name>, args: {...}}.',
      propertyNames: { pattern: NAME },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['layers'],
        properties: {
          description: { type: 'string' },
          params: { type: 'object', description: 'Parameters and their defaults; the layers use them as ${name}.' },
          layers: { type: 'array', items: templateNode, description: 'Nodes; strings may use ${...} over vars and params.' },
        },
      },
    },
    layers: { $ref: '#/$defs/layers' },
  },
};

export const trackingSectionSchema: JsonSchema = {
  type: 'object',
  description: 'Where runs are recorded; empty means the local run store.',
  additionalProperties: false,
  properties: {
    uri: { type: 'string', description: 'An MLflow tracking server, e.g. http://127.0.0.1:5000 (default: the local run store).' },
    experiment: { type: 'string', description: 'MLflow experiment name (default: the experiment `name`).' },
    run_name: {
      type: 'string',
      description: 'The run\u2019s name (default: <name>-<short run id>; a sweep trial: trial-003 lr=0.003 units=32).',
    },
    tags: { type: 'object', additionalProperties: { type: 'string' } },
    log_every_n_steps: {
      type: 'integer',
      minimum: 1,
      description:
        'Also log the training metrics every N optimizer steps, as step/loss, step/accuracy, ... (running means over the epoch so far, ' +
        'as Keras reports them), at step = optimizer steps so far, as MLflow\u2019s Keras autolog counts them (default: per epoch only).',
    },
  },
};

/** Every top-level key, in the order editors show them. */
export function topLevelProperties(): Record<string, JsonSchema> {
  return {
    extends: {
      description: 'Base files (relative to this file), deep-merged in order before this file.',
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
    },
    plugins: pluginsSchema,
    name: {
      type: 'string',
      pattern: SAFE_NAME_PATTERN,
      description: 'Run name; also the default tracking experiment and the run store directory (letters, digits, space and _ . @ + = , -; no path).',
    },
    description: { type: 'string' },
    seed: { type: 'integer', minimum: 0, description: 'Seeds initialisation, shuffling and augmentation.' },
    backend: { enum: [...BACKEND_REQUESTS], description: 'TF.js backend; auto picks the fastest available.' },
    vars: varsSchema,
    data: { $ref: '#/$defs/dataset' },
    model: modelSectionSchema,
    train: trainSectionSchema,
    tracking: trackingSectionSchema,
  };
}

export const REQUIRED_TOP_LEVEL = ['data', 'model', 'train'];
