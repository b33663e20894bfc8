import { readFileSync, statSync } from 'node:fs';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode, type Pair } from 'yaml';
import { ConfigError, type ConfigPath } from '../errors.ts';
import type { SourceLocation } from '../registry/kinds.ts';
import { closingBrace } from './expression.ts';
import { LocationMap } from './locations.ts';

/** How many alias expansions one file may cause; a "billion laughs" bomb needs far more. */
export const MAX_ALIAS_COUNT = 100;

/**
 * The largest config file read (default 10 MB; TESSERA_MAX_CONFIG_BYTES changes it). Parsing is
 * linear but not free (a few seconds per 10 MB); a file far larger is a mistake or an attack.
 */
export const DEFAULT_MAX_CONFIG_BYTES = 10 * 1024 * 1024;

export function maxConfigBytes(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.TESSERA_MAX_CONFIG_BYTES;
  const value = text === undefined || text === '' ? DEFAULT_MAX_CONFIG_BYTES : Number(text);
  if (!Number.isInteger(value) || value <= 0) {
    throw new ConfigError({ message: `TESSERA_MAX_CONFIG_BYTES=${JSON.stringify(text)}: expected a positive number of bytes` });
  }
  return value;
}

/** One parsed YAML file: its plain value and where every value and key was written. */
export interface ParsedFile {
  file: string;
  value: Record<string, unknown>;
  locations: LocationMap;
}

/** Reads and parses one YAML file into a mapping, or throws a located ConfigError. */
export function parseYamlFile(file: string, located?: { location: SourceLocation; path: ConfigPath }): ParsedFile {
  let bytes: Buffer;
  try {
    const limit = maxConfigBytes();
    const size = statSync(file).size;
    if (size > limit) {
      throw new ConfigError({
        location: located?.location ?? { file, line: 1, col: 1 },
        path: located?.path,
        message: `"${file}" is ${(size / 1024 / 1024).toFixed(1)} MB, over the ${(limit / 1024 / 1024).toFixed(1)} MB limit for config files`,
        hint: 'set TESSERA_MAX_CONFIG_BYTES to raise the limit if the file is meant to be this large',
      });
    }
    bytes = readFileSync(file);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new ConfigError({ location: located?.location, path: located?.path, message: `cannot read "${file}": ${reason}` }, { cause: error });
  }
  return parseYamlText(decodeUtf8(bytes, file), file);
}

/** Decodes strict UTF-8 (a leading BOM is dropped); any invalid byte is a located error. */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  if (bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))) {
    throw new ConfigError({ location: { file, line: 1, col: 1 }, message: 'the file is UTF-16; save it as UTF-8' });
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const before = new TextDecoder('utf-8').decode(bytes.subarray(0, offset));
    const lines = before.split('\n');
    const byte = bytes[offset]!.toString(16).padStart(2, '0');
    throw new ConfigError({
      location: { file, line: lines.length, col: lines[lines.length - 1]!.length + 1 },
      message: `invalid UTF-8 (byte 0x${byte} at offset ${offset}); experiment files must be UTF-8 text`,
    });
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    for (let k = 1; k < length; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += length;
  }
  return i;
}

const INDENTATION_HINT = 'check the indentation of this line and the lines around it';

const YAML_MESSAGES: Record<string, (text: string) => string> = {
  DUPLICATE_KEY: (key) => `duplicate key${key ? ` "${key}"` : ''}; each key may appear once in a mapping`,
  MULTIPLE_DOCS: () => 'more than one YAML document ("---"); an experiment file holds one mapping',
};

/*
 * `${...}` may be written unquoted anywhere, even in flow collections (`{units: ${dim * 2}}`),
 * where YAML would read its braces as syntax. Before parsing, each `${...}` is swapped for a
 * placeholder of the same length (so every line:col stays exact) made of private-use characters
 * YAML takes as plain text; scalars get their original text back after parsing.
 */
const MARK = '\uE000';
const PAD = '\uE001';
const PLACEHOLDER = new RegExp(`${MARK}(\\d+)${PAD}*`, 'g');

function protectExpressions(text: string): { text: string; restore: (value: string) => string } {
  const identity = { text, restore: (value: string) => value };
  if (!text.includes('${') || text.includes(MARK) || text.includes(PAD)) return identity;
  const spans: string[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf('${', i);
    if (start < 0 || (start > 0 && text[start - 1] === '$')) {
      const stop = start < 0 ? text.length : start + 2;
      out += text.slice(i, stop);
      i = stop;
      continue;
    }
    const end = closingBrace(text, start + 2, true);
    const span = end < 0 ? '' : text.slice(start, end + 1);
    const placeholder = `${MARK}${spans.length}`;
    if (end < 0 || span.includes('\n') || placeholder.length > span.length) {
      out += text.slice(i, start + 2);
      i = start + 2;
      continue;
    }
    spans.push(span);
    out += text.slice(i, start) + placeholder.padEnd(span.length, PAD);
    i = end + 1;
  }
  if (spans.length === 0) return identity;
  return { text: out, restore: (value) => value.replace(PLACEHOLDER, (_, index: string) => spans[Number(index)]!) };
}

/** Parses one YAML document keeping positions; syntax problems are located ConfigErrors. */
export function parseYamlDocument(source: string, file: string): { doc: Document; at: (offset: number) => SourceLocation } {
  const { text, restore } = protectExpressions(source);
  const lineCounter = new LineCounter();
  // yaml's own duplicate-key check compares each key with every earlier one (quadratic in the
  // keys of a mapping); `duplicateKey` below does it with a Set.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: true });
  const at = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    const first = problems[0]!;
    const start = first.pos[0];
    const rewrite = YAML_MESSAGES[first.code];
    const keyText = restore(/^("[^"\n]*"|'[^'\n]*'|[^:\n]*)/.exec(text.slice(start))![1]!.trim());
    const message = rewrite ? rewrite(keyText) : `invalid YAML: ${restore(first.message).replace(/\s+/g, ' ').trim()}`;
    const hint = /indent|nested mappings|compact mapping/i.test(first.message) ? INDENTATION_HINT : undefined;
    throw new ConfigError({ location: at(start), message, hint });
  }
  const duplicate = duplicateKey(doc.contents);
  if (duplicate) {
    const key = isScalar(duplicate.key) ? String(duplicate.key.value) : String(duplicate.key);
    throw new ConfigError({ location: at((duplicate.key as YamlNode).range?.[0] ?? 0), message: YAML_MESSAGES.DUPLICATE_KEY!(restore(key)) });
  }
  if (text !== source) {
    visit(doc, {
      Scalar(_, node) {
        if (typeof node.value === 'string') node.value = restore(node.value);
      },
    });
  }
  return { doc, at };
}

/** The first key written twice in one mapping (linear: one Set per mapping; no alias is followed). */
function duplicateKey(root: unknown): Pair | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        // `<<` merge keys may repeat; other keys are compared by their scalar value.
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (key !== '<<' && isScalar(pair.key)) {
          if (seen.has(key)) return pair;
          seen.add(key);
        }
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      stack.push(...node.items);
    }
  }
  return undefined;
}

/** Parses YAML text into a mapping with positions; syntax errors are located ConfigErrors. */
export function parseYamlText(text: string, file: string): ParsedFile {
  const { doc, at } = parseYamlDocument(text, file);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw new ConfigError({ location: at(0), message: 'the file is empty; expected a mapping of experiment keys (name, data, model, train, ...)' });
  }
  if (!isMap(doc.contents)) {
    const found = isSeq(doc.contents) ? 'a list' : isScalar(doc.contents) ? `a ${typeof doc.contents.value}` : 'an alias';
    throw new ConfigError({
      location: at(doc.contents.range?.[0] ?? 0),
      expected: 'a mapping of experiment keys (name, data, model, train, ...) at the top level',
      found,
    });
  }
  const value = toPlain(doc, file, at);
  const locations = new LocationMap();
  recordLocations(doc.contents, [], locations, at);
  return { file, value: value as Record<string, unknown>, locations };
}

/** The plain value of a parsed document, with alias expansion capped. */
export function toPlain(doc: Document, file: string, at: (offset: number) => SourceLocation): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    const alias = firstAlias(doc.contents);
    const location = alias?.range ? at(alias.range[0]) : { file, line: 1, col: 1 };
    if (error instanceof ReferenceError && /alias/i.test(error.message)) {
      throw new ConfigError({
        location,
        message: `aliases expand to too many nodes (more than ${MAX_ALIAS_COUNT} expansions); refusing a possible "billion laughs" document`,
      });
    }
    throw new ConfigError({ location, message: `invalid YAML: ${(error as Error).message}` }, { cause: error });
  }
}

function firstAlias(node: unknown): YamlNode | undefined {
  if (isAlias(node)) return node;
  if (isMap(node) || isSeq(node)) {
    for (const item of node.items) {
      const found = isPair(item) ? (firstAlias(item.key) ?? firstAlias(item.value)) : firstAlias(item);
      if (found) return found;
    }
  }
  return undefined;
}

// Aliases are not followed (their expansion could be huge): paths under one fall back to it.
function recordLocations(node: unknown, path: (string | number)[], locations: LocationMap, at: (offset: number) => SourceLocation): void {
  const range = (node as YamlNode | null)?.range;
  if (range) locations.setValue(path, at(range[0]));
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const keyRange = (pair.key as YamlNode | null)?.range;
      if (keyRange) locations.setKey([...path, key], at(keyRange[0]));
      // `key:` with no value has no value node; point at the key.
      if (pair.value === null && keyRange) locations.setValue([...path, key], at(keyRange[0]));
      recordLocations(pair.value, [...path, key], locations, at);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => recordLocations(item, [...path, index], locations, at));
  }
}
