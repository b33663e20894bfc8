import type { BlockEntry, Registries } from '../registry/kinds.ts';

/* ------------------------------------------------------------------------------------------ *
 * Combinators: the nodes that arrange other nodes. They live in the blocks registry (one      *
 * `type` discriminator, one schema union, listed by `exp blocks`) but are never layers: the    *
 * graph builder expands them into the functional graph, so `create` refuses to be called.     *
 * ------------------------------------------------------------------------------------------ */

/** A nested node; the schema assembler defines `#/$defs/block` as the union of every block. */
const NODE = { $ref: '#/$defs/block' };
const NODE_LIST = { type: 'array', items: NODE };
/** Names of intermediate tensors and shared modules: one path segment of a layer name. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]*$';

export const COMBINATOR_TYPES = ['sequential', 'residual', 'branch', 'repeat', 'call', 'shared'] as const;
export type CombinatorType = (typeof COMBINATOR_TYPES)[number];

function combinator(type: CombinatorType, description: string, params: Record<string, unknown>): BlockEntry {
  return {
    type,
    description,
    params: { type: 'object', additionalProperties: false, ...params },
    create() {
      throw new Error(`"${type}" is a combinator: buildModel expands it, it has no layer of its own`);
    },
  };
}

export const combinatorEntries: readonly BlockEntry[] = [
  combinator('sequential', 'Applies its layers in order, under its own name scope.', {
    required: ['layers'],
    properties: { layers: NODE_LIST },
  }),
  combinator('residual', 'out = skip + f(x): f is its layers; skip is its input, or the named tensor `skip`.', {
    required: ['layers'],
    properties: {
      layers: NODE_LIST,
      skip: { type: 'string', pattern: NAME_PATTERN, description: 'Name of an earlier tensor of the same block to add instead of the input.' },
    },
  }),
  combinator('branch', 'Applies each branch to the same input and merges the results (add, multiply or concat).', {
    required: ['branches', 'merge'],
    properties: {
      branches: { type: 'array', minItems: 2, items: NODE_LIST, description: 'Lists of nodes; an empty list is the identity.' },
      merge: { enum: ['add', 'multiply', 'concat'], description: 'How the branch outputs are combined.' },
      axis: { type: 'integer', default: -1, description: 'Concatenation axis (merge: concat).' },
    },
  }),
  combinator('repeat', 'Applies its layers `times` times in sequence; instance i is named <name>_i (default block_i), with its own weights.', {
    required: ['times', 'layers'],
    properties: { times: { type: 'integer', minimum: 1 }, layers: NODE_LIST },
  }),
  combinator('call', 'Instantiates a reusable definition from model.blocks with its params defaults overridden by `args`.', {
    required: ['block'],
    properties: {
      block: { type: 'string', description: 'Name of a definition under model.blocks.' },
      args: { type: 'object', description: 'Values for the definition\'s params.' },
    },
  }),
  combinator('shared', 'A named module applied more than once with the same weights: the first use gives `layer`, later uses only the name.', {
    required: ['name'],
    properties: { layer: NODE },
  }),
];

/** Registers the combinators in `registries.blocks` (the primitives come from packages/models). */
export function registerCombinators(registries: Registries): Registries {
  for (const entry of combinatorEntries) registries.blocks.register(entry);
  return registries;
}
