import { stringify } from 'yaml';

export { evaluate, interpolate, parseExpression, splitTemplate, hasExpression, toScope, ExpressionError, EXPRESSION_FUNCTIONS } from './expression.ts';
export type { Scope, ScopeLike, TemplatePart } from './expression.ts';
export { loadExperiment } from './load.ts';
export type { LoadedConfig, LoadOptions } from './load.ts';
export { parseOverride } from './overrides.ts';
export type { Override } from './overrides.ts';
export { isTemplatePath } from './resolve.ts';
export { MAX_ALIAS_COUNT } from './source.ts';

/** A resolved config as text: YAML (the default, as `exp config` prints it) or JSON. */
export function formatConfig(config: unknown, format: 'yaml' | 'json' = 'yaml'): string {
  if (format === 'json') return `${JSON.stringify(config, null, 2)}\n`;
  return stringify(config, { lineWidth: 0, aliasDuplicateObjects: false });
}
