import { didYouMean } from '../registry/registry.ts';

/* ------------------------------------------------------------------------------------------ *
 * The `${...}` expression language: a tokenizer and a Pratt parser over a tiny, closed        *
 * grammar. Nothing reaches JavaScript: names resolve only through the Scope (own keys), and   *
 * the only callables are the fixed functions below. Semantics follow Python, which is what    *
 * the reference configs are written in: `//` floors, `%` takes the divisor's sign, `**` is    *
 * right-associative and binds tighter than a unary minus on its left (-2 ** 2 == -4),         *
 * `and`/`or` short-circuit and return an operand, comparisons chain (1 < x < 3).              *
 * ------------------------------------------------------------------------------------------ */

export type ExpressionValue = number | string | boolean | null | readonly unknown[] | { readonly [k: string]: unknown };

/** Where names come from. A plain object works; the config loader passes a lazy resolver. */
export interface Scope {
  has(name: string): boolean;
  get(name: string): unknown;
  names(): Iterable<string>;
}

export type ScopeLike = Scope | Readonly<Record<string, unknown>>;

export function toScope(scope: ScopeLike): Scope {
  if (isScope(scope)) return scope;
  const record = scope as Readonly<Record<string, unknown>>;
  return {
    has: (name) => Object.hasOwn(record, name),
    get: (name) => record[name],
    names: () => Object.keys(record),
  };
}

function isScope(scope: ScopeLike): scope is Scope {
  return typeof (scope as Scope).has === 'function' && typeof (scope as Scope).names === 'function';
}

/** How deeply an expression may nest (parentheses, operators, calls): 20,000 `(` is an attack, not a config. */
export const MAX_EXPRESSION_DEPTH = 100;

/**
 * The largest value an expression may build, in characters of text or items of lists and
 * mappings (counted as written out): doubling a variable 39 times must fail at once, located,
 * not after gigabytes. Sized like the config file limit.
 */
export const MAX_EXPRESSION_VALUE_SIZE = 10_000_000;

/** An error inside one expression; `offset` is the 0-based character index in the expression. */
export class ExpressionError extends Error {
  override name = 'ExpressionError';
  constructor(
    message: string,
    readonly offset: number,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/* ---------------------------------------- tokens ---------------------------------------- */

type TokenKind = 'number' | 'string' | 'name' | 'op' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
  value?: number | string;
  offset: number;
}

// Longest first, so `**` wins over `*` and `//` over `/`.
const OPERATORS = ['**', '//', '==', '!=', '<=', '>=', '+', '-', '*', '/', '%', '<', '>', '(', ')', ','];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const start = i;
    const number = /^(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/.exec(source.slice(i));
    if (number) {
      i += number[0].length;
      if (/^[A-Za-z_]/.test(source.slice(i))) throw new ExpressionError(`malformed number "${source.slice(start, i + 1)}"`, start);
      tokens.push({ kind: 'number', text: number[0], value: Number(number[0]), offset: start });
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i));
    if (name) {
      i += name[0].length;
      tokens.push({ kind: 'name', text: name[0], offset: start });
      continue;
    }
    if (ch === '"' || ch === "'") {
      let text = '';
      i++;
      for (;;) {
        if (i >= source.length) throw new ExpressionError('unterminated string', start);
        const c = source[i]!;
        if (c === ch) break;
        if (c === '\\') {
          const next = source[i + 1];
          if (next === undefined) throw new ExpressionError('unterminated string', start);
          text += next === 'n' ? '\n' : next === 't' ? '\t' : next;
          i += 2;
          continue;
        }
        text += c;
        i++;
      }
      i++;
      tokens.push({ kind: 'string', text: source.slice(start, i), value: text, offset: start });
      continue;
    }
    const op = OPERATORS.find((o) => source.startsWith(o, i));
    if (!op) {
      const hint = ch === '&' || ch === '|' ? 'use "and" / "or"' : ch === '!' ? 'use "not"' : undefined;
      throw new ExpressionError(`unexpected character "${ch}"`, start, hint);
    }
    i += op.length;
    tokens.push({ kind: 'op', text: op, offset: start });
  }
  tokens.push({ kind: 'end', text: '', offset: source.length });
  return tokens;
}

/* ---------------------------------------- syntax ---------------------------------------- */

type Node =
  | { kind: 'literal'; value: number | string | boolean | null; offset: number }
  | { kind: 'name'; name: string; offset: number }
  | { kind: 'unary'; op: string; operand: Node; offset: number }
  | { kind: 'binary'; op: string; left: Node; right: Node; offset: number }
  | { kind: 'compare'; ops: string[]; operands: Node[]; offset: number }
  | { kind: 'call'; name: string; args: Node[]; offset: number };

// Binding powers, lowest first (Python's table).
const BP = { or: 10, and: 20, not: 30, compare: 40, additive: 50, multiplicative: 60, unary: 70, power: 80 } as const;

const INFIX: Record<string, number> = {
  or: BP.or,
  and: BP.and,
  '==': BP.compare, '!=': BP.compare, '<': BP.compare, '<=': BP.compare, '>': BP.compare, '>=': BP.compare,
  '+': BP.additive, '-': BP.additive,
  '*': BP.multiplicative, '/': BP.multiplicative, '//': BP.multiplicative, '%': BP.multiplicative,
  '**': BP.power,
};
const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);
const KEYWORDS: Record<string, boolean | null> = { true: true, false: false, True: true, False: false, null: null, None: null };

class Parser {
  private position = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    if (this.peek().kind === 'end') throw new ExpressionError('empty expression', 0);
    const node = this.expression(0);
    const rest = this.peek();
    if (rest.kind !== 'end') throw new ExpressionError(`unexpected "${rest.text}"`, rest.offset);
    return node;
  }

  private peek(): Token {
    return this.tokens[this.position]!;
  }

  private next(): Token {
    return this.tokens[this.position++]!;
  }

  private expect(text: string): Token {
    const token = this.peek();
    if (token.text !== text) {
      throw new ExpressionError(token.kind === 'end' ? `expected "${text}" before the end` : `expected "${text}", got "${token.text}"`, token.offset);
    }
    return this.next();
  }

  private expression(minBp: number): Node {
    if (this.depth >= MAX_EXPRESSION_DEPTH) {
      throw new ExpressionError(`expression nested more than ${MAX_EXPRESSION_DEPTH} levels deep`, this.peek().offset, 'split it into variables');
    }
    this.depth++;
    try {
      return this.expressionAt(minBp);
    } finally {
      this.depth--;
    }
  }

  private expressionAt(minBp: number): Node {
    let left = this.prefix();
    for (;;) {
      const token = this.peek();
      const isInfix = (token.kind === 'op' || token.kind === 'name') && Object.hasOwn(INFIX, token.text);
      if (!isInfix) {
        if (token.kind === 'name' || token.kind === 'number' || token.kind === 'string' || token.text === '(') {
          throw new ExpressionError(`unexpected "${token.text}" (missing operator?)`, token.offset);
        }
        return left;
      }
      const bp = INFIX[token.text]!;
      if (bp < minBp) return left;
      this.next();
      if (COMPARISONS.has(token.text)) {
        // Python chains comparisons: a < b < c means (a < b) and (b < c).
        const ops = [token.text];
        const operands = [left, this.expression(BP.compare + 1)];
        while (COMPARISONS.has(this.peek().text)) {
          ops.push(this.next().text);
          operands.push(this.expression(BP.compare + 1));
        }
        left = { kind: 'compare', ops, operands, offset: token.offset };
        continue;
      }
      // `**` is right-associative: its right side may contain another `**` (and a unary minus).
      const right = token.text === '**' ? this.expression(BP.unary) : this.expression(bp + 1);
      left = { kind: 'binary', op: token.text, left, right, offset: token.offset };
    }
  }

  private prefix(): Node {
    const token = this.next();
    switch (token.kind) {
      case 'number':
        return { kind: 'literal', value: token.value as number, offset: token.offset };
      case 'string':
        return { kind: 'literal', value: token.value as string, offset: token.offset };
      case 'name': {
        if (token.text === 'not') return { kind: 'unary', op: 'not', operand: this.expression(BP.not), offset: token.offset };
        if (token.text === 'and' || token.text === 'or') throw new ExpressionError(`"${token.text}" needs a left operand`, token.offset);
        if (Object.hasOwn(KEYWORDS, token.text)) return { kind: 'literal', value: KEYWORDS[token.text]!, offset: token.offset };
        if (this.peek().text === '(') {
          this.next();
          const args: Node[] = [];
          if (this.peek().text !== ')') {
            for (;;) {
              args.push(this.expression(0));
              if (this.peek().text !== ',') break;
              this.next();
            }
          }
          this.expect(')');
          return { kind: 'call', name: token.text, args, offset: token.offset };
        }
        return { kind: 'name', name: token.text, offset: token.offset };
      }
      case 'op':
        if (token.text === '(') {
          const inner = this.expression(0);
          this.expect(')');
          return inner;
        }
        if (token.text === '-' || token.text === '+') {
          // A unary minus binds looser than `**` on its right: -2 ** 2 == -(2 ** 2).
          return { kind: 'unary', op: token.text, operand: this.expression(BP.unary), offset: token.offset };
        }
        throw new ExpressionError(`unexpected "${token.text}"`, token.offset);
      case 'end':
        throw new ExpressionError('unexpected end of expression', token.offset);
    }
  }
}

/* -------------------------------------- evaluation -------------------------------------- */

type Fn = (args: number[], offset: number) => number;

const FUNCTIONS: ReadonlyMap<string, { arity: [number, number]; fn: Fn }> = new Map<string, { arity: [number, number]; fn: Fn }>([
  ['min', { arity: [1, Infinity], fn: (a) => Math.min(...a) }],
  ['max', { arity: [1, Infinity], fn: (a) => Math.max(...a) }],
  ['abs', { arity: [1, 1], fn: ([x]) => Math.abs(x!) }],
  ['round', { arity: [1, 2], fn: ([x, digits]) => roundHalfEven(x!, digits ?? 0) }],
  ['floor', { arity: [1, 1], fn: ([x]) => Math.floor(x!) }],
  ['ceil', { arity: [1, 1], fn: ([x]) => Math.ceil(x!) }],
  [
    'sqrt',
    {
      arity: [1, 1],
      fn: ([x], offset) => {
        if (x! < 0) throw new ExpressionError(`sqrt of a negative number (${x})`, offset);
        return Math.sqrt(x!);
      },
    },
  ],
  [
    'log',
    {
      arity: [1, 2],
      fn: ([x, base], offset) => {
        if (x! <= 0) throw new ExpressionError(`log of a non-positive number (${x})`, offset);
        if (base !== undefined && (base <= 0 || base === 1)) throw new ExpressionError(`log base must be > 0 and != 1, got ${base}`, offset);
        return base === undefined ? Math.log(x!) : Math.log(x!) / Math.log(base);
      },
    },
  ],
]);

/** Names of the functions an expression may call. */
export const EXPRESSION_FUNCTIONS: readonly string[] = [...FUNCTIONS.keys()];

/** Python's round(): halves go to the even neighbour, so round(2.5) == 2 and round(3.5) == 4. */
function roundHalfEven(x: number, digits: number): number {
  const factor = 10 ** digits;
  const scaled = x * factor;
  const floor = Math.floor(scaled);
  const diff = scaled - floor;
  const rounded = diff > 0.5 ? floor + 1 : diff < 0.5 ? floor : floor % 2 === 0 ? floor : floor + 1;
  return rounded / factor;
}

function typeName(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'mapping';
  return typeof value;
}

function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  if (value !== null && typeof value === 'object') return Object.keys(value).length > 0;
  return Boolean(value);
}

function num(value: unknown, op: string, offset: number): number {
  if (typeof value !== 'number') throw new ExpressionError(`"${op}" needs numbers, got ${typeName(value)} ${JSON.stringify(value)}`, offset);
  return value;
}

function finite(value: number, offset: number): number {
  if (!Number.isFinite(value)) throw new ExpressionError(`result is not a finite number (${value})`, offset);
  return value;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

class Evaluator {
  constructor(private readonly scope: Scope) {}

  eval(node: Node): unknown {
    switch (node.kind) {
      case 'literal':
        return node.value;
      case 'name': {
        if (this.scope.has(node.name)) return this.scope.get(node.name);
        // One- and two-letter names are all "close" to each other; a suggestion would be noise.
        const hint = node.name.length > 2 ? didYouMean(node.name, [...this.scope.names()]) : undefined;
        throw new ExpressionError(`unknown variable "${node.name}"`, node.offset, hint ? `did you mean "${hint}"?` : undefined);
      }
      case 'unary': {
        const value = this.eval(node.operand);
        if (node.op === 'not') return !truthy(value);
        const x = num(value, node.op, node.offset);
        return node.op === '-' ? -x : x;
      }
      case 'compare': {
        let left = this.eval(node.operands[0]!);
        for (let i = 0; i < node.ops.length; i++) {
          const right = this.eval(node.operands[i + 1]!);
          if (!this.compare(node.ops[i]!, left, right, node.offset)) return false;
          left = right;
        }
        return true;
      }
      case 'binary':
        return this.binary(node);
      case 'call':
        return this.call(node);
    }
  }

  private compare(op: string, a: unknown, b: unknown, offset: number): boolean {
    if (op === '==') return deepEqual(a, b);
    if (op === '!=') return !deepEqual(a, b);
    const comparable = (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string');
    if (!comparable) throw new ExpressionError(`cannot compare ${typeName(a)} with ${typeName(b)} using "${op}"`, offset);
    const x = a as number | string;
    const y = b as number | string;
    return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
  }

  private binary(node: Extract<Node, { kind: 'binary' }>): unknown {
    const { op, offset } = node;
    if (op === 'and') {
      const left = this.eval(node.left);
      return truthy(left) ? this.eval(node.right) : left;
    }
    if (op === 'or') {
      const left = this.eval(node.left);
      return truthy(left) ? left : this.eval(node.right);
    }
    const left = this.eval(node.left);
    const right = this.eval(node.right);
    if (op === '+' && typeof left === 'string' && typeof right === 'string') return boundedText(left.length + right.length, offset) && left + right;
    if (op === '+' && (typeof left === 'string' || typeof right === 'string')) {
      throw new ExpressionError(`cannot add ${typeName(left)} and ${typeName(right)}`, offset, 'text is joined by writing it outside ${...}, e.g. "block_${i}"');
    }
    const a = num(left, op, offset);
    const b = num(right, op, offset);
    if ((op === '/' || op === '//' || op === '%') && b === 0) throw new ExpressionError('division by zero', offset);
    switch (op) {
      case '+': return finite(a + b, offset);
      case '-': return finite(a - b, offset);
      case '*': return finite(a * b, offset);
      case '/': return finite(a / b, offset);
      case '//': return finite(Math.floor(a / b), offset);
      case '%': return finite(a - b * Math.floor(a / b), offset);
      case '**': return finite(a ** b, offset);
    }
    throw new ExpressionError(`unknown operator "${op}"`, offset);
  }

  private call(node: Extract<Node, { kind: 'call' }>): unknown {
    const fn = FUNCTIONS.get(node.name);
    if (!fn) {
      const hint = didYouMean(node.name, EXPRESSION_FUNCTIONS);
      throw new ExpressionError(
        `unknown function "${node.name}"`,
        node.offset,
        hint ? `did you mean "${hint}"?` : `available: ${EXPRESSION_FUNCTIONS.join(', ')}`,
      );
    }
    const [least, most] = fn.arity;
    if (node.args.length < least || node.args.length > most) {
      const wanted = least === most ? `${least}` : most === Infinity ? `at least ${least}` : `${least} to ${most}`;
      throw new ExpressionError(`${node.name}() takes ${wanted} argument${wanted === '1' ? '' : 's'}, got ${node.args.length}`, node.offset);
    }
    let args = node.args.map((a) => this.eval(a));
    // min([1, 2]) and max(list_var) read a single list argument as the values.
    if ((node.name === 'min' || node.name === 'max') && args.length === 1 && Array.isArray(args[0])) args = [...args[0]];
    if (args.length === 0) throw new ExpressionError(`${node.name}() of an empty list`, node.offset);
    return finite(fn.fn(args.map((a) => num(a, `${node.name}()`, node.offset)), node.offset), node.offset);
  }
}

/** Parses once; the AST can be evaluated against many scopes (a template instantiated N times). */
export function parseExpression(source: string): { evaluate(scope: ScopeLike): unknown } {
  const ast = new Parser(tokenize(source)).parse();
  return { evaluate: (scope) => new Evaluator(toScope(scope)).eval(ast) };
}

/** Evaluates one expression (the text inside `${...}`). Throws ExpressionError. */
export function evaluate(source: string, scope: ScopeLike): unknown {
  return parseExpression(source).evaluate(scope);
}

/* ------------------------------------- interpolation ------------------------------------- */

export type TemplatePart = { text: string } | { expr: string; offset: number };

/**
 * Splits a string into text and `${...}` parts; `$${` is a literal `${`. `offset` is where the
 * expression text starts in `value`. Braces inside quoted strings in the expression are fine.
 */
export function splitTemplate(value: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < value.length) {
    if (value.startsWith('$${', i)) {
      text += '${';
      i += 3;
      continue;
    }
    if (!value.startsWith('${', i)) {
      text += value[i];
      i++;
      continue;
    }
    const start = i + 2;
    const j = closingBrace(value, start);
    if (j < 0) throw new ExpressionError('"${" without a closing "}"', i);
    if (text) parts.push({ text });
    text = '';
    parts.push({ expr: value.slice(start, j), offset: start });
    i = j + 1;
  }
  if (text || parts.length === 0) parts.push({ text });
  return parts;
}

/**
 * Index of the `}` that closes an expression starting at `from` (nested braces counted, quoted
 * strings skipped), or -1. With `singleLine`, a newline ends the search too (YAML scanning).
 */
export function closingBrace(text: string, from: number, singleLine = false): number {
  let depth = 0;
  let quote: string | undefined;
  for (let j = from; j < text.length; j++) {
    const c = text[j]!;
    if (singleLine && c === '\n') return -1;
    if (quote) {
      if (c === '\\') j++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0) return j;
      depth--;
    }
  }
  return -1;
}

/** True when the string holds at least one `${...}` (an escaped `$${` does not count). */
export function hasExpression(value: string): boolean {
  return value.replaceAll('$${', '').includes('${');
}

/**
 * Resolves `${...}` in a value. A string that is exactly one `${expr}` yields the expression's
 * typed value; `${...}` inside longer text is interpolated as text; lists and mappings are
 * resolved recursively; other values are returned unchanged. Error offsets are into the string.
 */
export function interpolate(value: unknown, scope: ScopeLike): unknown {
  const resolved = toScope(scope);
  if (typeof value === 'string') return interpolateString(value, resolved);
  if (Array.isArray(value)) return value.map((item) => interpolate(item, resolved));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(out, key, { value: interpolate(item, resolved), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

function interpolateString(value: string, scope: Scope): unknown {
  const parts = splitTemplate(value);
  const run = (part: { expr: string; offset: number }) => {
    try {
      return evaluate(part.expr, scope);
    } catch (error) {
      if (error instanceof ExpressionError) throw new ExpressionError(error.message, part.offset + error.offset, error.hint);
      throw error;
    }
  };
  if (parts.length === 1) {
    const only = parts[0]!;
    return 'expr' in only ? run(only) : only.text;
  }
  let length = 0;
  return parts
    .map((part) => {
      if ('text' in part) return part.text;
      const result = run(part);
      if (result !== null && typeof result === 'object') {
        throw new ExpressionError(`a ${typeName(result)} cannot be interpolated into text`, part.offset);
      }
      const text = String(result);
      length += text.length;
      boundedText(length, part.offset);
      return text;
    })
    .join('');
}

/** Refuses text longer than MAX_EXPRESSION_VALUE_SIZE before it is built; true otherwise. */
function boundedText(length: number, offset: number): true {
  if (length > MAX_EXPRESSION_VALUE_SIZE) {
    throw new ExpressionError(`the text built here would be ${length} characters, over the limit of ${MAX_EXPRESSION_VALUE_SIZE}`, offset);
  }
  return true;
}
