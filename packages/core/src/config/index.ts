import { Document, isMap, isScalar, isSeq, visit } from 'yaml';
import type { ConfigPath } from '../errors.ts';

export { evaluate, interpolate, parseExpression, splitTemplate, hasExpression, toScope, ExpressionError, EXPRESSION_FUNCTIONS } from './expression.ts';
export type { Scope, ScopeLike, TemplatePart } from './expression.ts';
export { loadExperiment } from './load.ts';
export type { LoadedConfig, LoadOptions } from './load.ts';
export { parseOverride } from './overrides.ts';
export { isPlainObject } from './plain.ts';
export type { Override } from './overrides.ts';
export { describeOrigin, isTemplatePath, type ValueOrigin } from './resolve.ts';
export { DEFAULT_MAX_CONFIG_BYTES, MAX_ALIAS_COUNT, maxConfigBytes, parseYamlFile, parseYamlText, type ParsedFile } from './source.ts';

export interface FormatOptions {
  /** Annotates each value with where it came from (`exp config --show-origin`). */
  origin?: (path: ConfigPath) => string | undefined;
}

/** A resolved config as text: YAML (the default, as `exp config` prints it) or JSON. */
export function formatConfig(config: unknown, format: 'yaml' | 'json' = 'yaml', options: FormatOptions = {}): string {
  if (format === 'json') return `${JSON.stringify(config, null, 2)}\n`;
  const doc = new Document(config, { aliasDuplicateObjects: false });
  const annotate = options.origin;
  // Short lists of scalars and small entries inside lists read best inline, as people write them.
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true;
    },
    Map(_, node, path) {
      const parent = path[path.length - 1];
      const inline = (value: unknown) => isScalar(value) || (isSeq(value) && value.items.every((item) => isScalar(item)));
      // Inline entries have no room for a comment per value.
      if (!annotate && isSeq(parent) && node.items.every((pair) => inline(pair.value))) node.flow = JSON.stringify(node.toJSON()).length <= 80;
    },
  });
  if (annotate) annotateOrigins(doc.contents, [], annotate);
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

/** Puts ` # origin` after every scalar and every inline list. */
function annotateOrigins(node: unknown, path: (string | number)[], origin: (path: ConfigPath) => string | undefined): void {
  const leaf = isScalar(node) || (isSeq(node) && node.flow) || ((isMap(node) || isSeq(node)) && node.items.length === 0);
  if (leaf) {
    if ((isMap(node) || isSeq(node)) && node.items.length === 0) node.flow = true; // `{} # origin` on one line
    const text = origin(path);
    if (text) (node as { comment?: string | null }).comment = ` ${text}`;
    return;
  }
  if (isMap(node)) for (const pair of node.items) annotateOrigins(pair.value, [...path, String(isScalar(pair.key) ? pair.key.value : pair.key)], origin);
  else if (isSeq(node)) node.items.forEach((item, index) => annotateOrigins(item, [...path, index], origin));
}
