import { describe, expect, it } from 'vitest';
import { evaluate, ExpressionError, interpolate, parseExpression, splitTemplate } from './expression.ts';

const scope = { image_size: 64, patch_size: 8, dim: 256, name: 'fnet', on: true, sizes: [3, 9, 4] };
const run = (source: string) => evaluate(source, scope);
const failure = (source: string) => {
  try {
    run(source);
  } catch (error) {
    if (error instanceof ExpressionError) return { message: error.message, offset: error.offset, hint: error.hint };
    throw error;
  }
  throw new Error(`expected ${source} to fail`);
};

describe('evaluate', () => {
  // Golden values are Python 3's answers to the same expressions.
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['2 ** 3 ** 2', 512], // right-associative
    ['(2 ** 3) ** 2', 64],
    ['-2 ** 2', -4], // unary minus binds looser than ** on its right
    ['2 ** -1', 0.5],
    ['7 // 2', 3],
    ['-7 // 2', -4], // floors, not truncates
    ['7 / 2', 3.5],
    ['-7 % 3', 2], // the divisor's sign
    ['7 % -3', -2],
    ['10 - 4 - 3', 3], // left-associative
    ['64 / 8 / 2', 4],
    ['(image_size / patch_size) ** 2', 64],
    ['image_size // patch_size * 2', 16],
    ['1 < 2 < 3', true], // chained
    ['3 > 2 > 2', false],
    ['1 == 1.0', true],
    ['"a" + "b"', 'ab'],
    ["'x' < 'y'", true],
    ['not 1 == 2', true],
    ['true and false or true', true],
    ['0 or 5', 5], // returns an operand, like Python
    ['2 and 3', 3],
    ['not on', false],
    ['min(3, 1, 2) + max(4, 9)', 10],
    ['max(sizes)', 9],
    ['abs(-2.5)', 2.5],
    ['round(2.5)', 2], // half to even
    ['round(3.5)', 4],
    ['round(2.675, 1)', 2.7],
    ['floor(-1.5)', -2],
    ['ceil(1.2)', 2],
    ['sqrt(16)', 4],
    ['log(8, 2)', 3],
    ['1e-3 * 1000', 1],
    ['dim * 4', 1024],
    ['name', 'fnet'],
  ])('%s = %s', (source, expected) => {
    const value = run(source);
    if (typeof expected === 'number') expect(value).toBeCloseTo(expected, 12);
    else expect(value).toBe(expected);
  });

  it('parses once and evaluates against many scopes', () => {
    const expr = parseExpression('dim * 2');
    expect([1, 2, 3].map((dim) => expr.evaluate({ dim }))).toEqual([2, 4, 6]);
  });

  it('names an unknown variable with a did-you-mean and its offset', () => {
    expect(failure('2 * patch_sise')).toEqual({ message: 'unknown variable "patch_sise"', offset: 4, hint: 'did you mean "patch_size"?' });
  });

  it('refuses division by zero, in all three forms', () => {
    for (const op of ['/', '//', '%']) expect(failure(`1 ${op} (dim - 256)`).message).toBe('division by zero');
  });

  it.each([
    ['1 +', 'unexpected end of expression', 3],
    ['(1 + 2', 'expected ")" before the end', 6],
    ['1 2', 'unexpected "2" (missing operator?)', 2],
    ['', 'empty expression', 0],
    ['a && b', 'unexpected character "&"', 2],
    ['"abc', 'unterminated string', 0],
    ['12abc', 'malformed number "12a"', 0],
    ['foo(1)', 'unknown function "foo"', 0],
    ['sqrt(1, 2)', 'sqrt() takes 1 argument, got 2', 0],
    ['sqrt(-1)', 'sqrt of a negative number (-1)', 0],
    ['"a" + 1', 'cannot add string and number', 4],
    ['"a" < 1', 'cannot compare string with number using "<"', 4],
    ['-name', '"-" needs numbers, got string "fnet"', 0],
    ['10 ** 400', 'result is not a finite number (Infinity)', 3],
  ])('reports %j as %j at %i', (source, message, offset) => {
    const error = failure(source);
    expect(error.message).toBe(message);
    expect(error.offset).toBe(offset);
  });

  it('never reaches JavaScript objects through names', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'process', 'globalThis']) {
      expect(failure(name).message).toBe(`unknown variable "${name}"`);
    }
    expect(failure('constructor(1)').message).toBe('unknown function "constructor"');
  });
});

describe('interpolate', () => {
  it('gives a whole ${expr} its typed value and interpolates inside text', () => {
    expect(interpolate('${dim * 2}', scope)).toBe(512);
    expect(interpolate('${on}', scope)).toBe(true);
    expect(interpolate('${sizes}', scope)).toEqual([3, 9, 4]);
    expect(interpolate('block_${dim // 128}_of_${name}', scope)).toBe('block_2_of_fnet');
    expect(interpolate('plain', scope)).toBe('plain');
    expect(interpolate({ units: '${dim}', list: ['${patch_size}', 1] }, scope)).toEqual({ units: 256, list: [8, 1] });
  });

  it('keeps $${ as a literal ${', () => {
    expect(interpolate('cost $${dim}', scope)).toBe('cost ${dim}');
  });

  it('reports offsets into the whole string', () => {
    try {
      interpolate('abc ${dim + nope}', scope);
      expect.unreachable();
    } catch (error) {
      expect((error as ExpressionError).offset).toBe(12);
    }
  });

  it('splits templates, allowing braces inside quoted strings', () => {
    expect(splitTemplate('a${"}" + x}b')).toEqual([{ text: 'a' }, { expr: '"}" + x', offset: 3 }, { text: 'b' }]);
    expect(() => splitTemplate('a ${x')).toThrow('"${" without a closing "}"');
  });
});
