import { describe, expect, it } from 'vitest';
import { MlflowError } from './errors.ts';
import { MLFLOW_LIMITS, codePointLength, validateKey, validateMetric, validateValue } from './validation.ts';

function refusal(fn: () => void): MlflowError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(MlflowError);
    return error as MlflowError;
  }
  throw new Error('expected a refusal');
}

describe('validateKey (MLflow mlflow/utils/validation.py rules)', () => {
  it.each(['loss', 'val/top5_accuracy', 'lr schedule: step-1.5', 'größe', '学习率', 'a.b.c'])('accepts %j', (key) => {
    expect(() => validateKey('metric', key)).not.toThrow();
  });

  it('names the offending characters and the allowed set', () => {
    const error = refusal(() => validateKey('param', 'bad key!'));
    expect(error.errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(error.status).toBeUndefined();
    expect(error.attempts).toBe(0);
    expect(error.message).toContain('param key "bad key!" contains "!"');
    expect(error.message).toContain('colons (:) and slashes (/)');
    expect(refusal(() => validateKey('tag', 'a=b,c=d')).message).toContain('"=", ","');
  });

  // Python's posixpath.normpath(name) must equal name (MLflow may store keys as file names).
  it.each([
    ['a//b', 'a/b'],
    ['./a', 'a'],
    ['a/', 'a'],
    ['a/./b', 'a/b'],
    ['../a', 'a'],
    ['/a', 'a'],
    ['.', 'a name'],
  ])('refuses the non-normalised path %j and suggests %j', (key, suggestion) => {
    const error = refusal(() => validateKey('metric', key));
    expect(error.message).toContain('not a normalised path');
    expect(error.message).toContain(`use ${JSON.stringify(suggestion)}`);
  });

  it('refuses empty and non-string keys', () => {
    expect(refusal(() => validateKey('tag', '')).message).toContain('non-empty string');
    expect(refusal(() => validateKey('tag', 3 as unknown as string)).message).toContain('got 3');
  });

  it('allows exactly 250 code points', () => {
    expect(() => validateKey('metric', 'k'.repeat(MLFLOW_LIMITS.keyLength))).not.toThrow();
    expect(refusal(() => validateKey('metric', 'k'.repeat(251))).message).toContain('251 characters long; MLflow allows at most 250');
    // 250 astral characters are 500 UTF-16 units but 250 code points, as Python counts.
    expect(() => validateKey('metric', '𝛼'.repeat(250))).not.toThrow();
  });
});

describe('value limits', () => {
  it('counts code points like Python', () => {
    expect(codePointLength('𝛼é')).toBe(2);
    expect('𝛼é'.length).toBe(3);
  });

  it('caps params at 6000 and tags at 8000 characters', () => {
    expect(() => validateValue('param', 'p', 'x'.repeat(6000))).not.toThrow();
    expect(refusal(() => validateValue('param', 'p', 'x'.repeat(6001))).message).toBe(
      'param "p": value is 6001 characters long; MLflow allows at most 6000',
    );
    expect(() => validateValue('tag', 't', 'x'.repeat(8000))).not.toThrow();
    expect(refusal(() => validateValue('tag', 't', 'x'.repeat(8001))).message).toContain('at most 8000');
  });

  it('checks metric values, timestamps and steps', () => {
    expect(() => validateMetric({ key: 'm', value: NaN, timestamp: 0, step: -3 })).not.toThrow();
    expect(refusal(() => validateMetric({ key: 'm', value: '1', timestamp: 0, step: 0 })).message).toContain('value must be a number');
    expect(refusal(() => validateMetric({ key: 'm', value: 1, timestamp: -1, step: 0 })).message).toContain('non-negative integer');
    expect(refusal(() => validateMetric({ key: 'm', value: 1, timestamp: 1, step: 0.5 })).message).toContain('step must be an integer');
  });
});
