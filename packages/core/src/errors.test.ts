import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigErrors, configErrorsOf, describeValue, formatLocation, formatPath, isConfigError, throwIfAny } from './errors.ts';

describe('ConfigError', () => {
  it('renders location, path, expected/found and hint on one line, paths relative to cwd', () => {
    const error = new ConfigError({
      location: { file: '/repo/experiments/fnet.yaml', line: 14, col: 9 },
      path: ['model', 'layers', 3, 'units'],
      expected: 'an integer',
      found: describeValue('256x'),
      hint: 'did you mean 256?',
    });
    expect(error.render('/repo')).toBe('experiments/fnet.yaml:14:9 model.layers[3].units: expected an integer, got string "256x"; did you mean 256?');
    expect(error.detail).toBe('expected an integer, got string "256x"');
  });

  it('names an override argument instead of a file position', () => {
    const error = new ConfigError({ location: { file: '--set train.epochs=x', line: 1, col: 1 }, path: ['train', 'epochs'], message: 'bad' });
    expect(error.render()).toBe('"--set train.epochs=x" train.epochs: bad');
  });

  it('prints paths the way they are written in YAML, quoting odd keys', () => {
    expect(formatPath([])).toBe('');
    expect(formatPath(['vars', 'image-size', 'a b', 0, 'x'])).toBe('vars.image-size["a b"][0].x');
  });

  it('describes values plainly', () => {
    expect([describeValue(null), describeValue(-3), describeValue(true), describeValue([1]), describeValue({}), describeValue('x'.repeat(80))]).toEqual([
      'null', '-3', 'true', 'a list of 1 item', 'a mapping', `string "${'x'.repeat(57)}..."`,
    ]);
    expect(describeValue('https://bob:hunter2@mlflow:5000')).toBe('string "https://bob:****@mlflow:5000"');
  });

  it('carries several errors, sorted by file and position', () => {
    const at = (line: number, col: number) => new ConfigError({ location: { file: '/a.yaml', line, col }, message: `${line}:${col}` });
    const many = new ConfigErrors([at(5, 1), at(2, 9), at(2, 3)]);
    expect(isConfigError(many) && isConfigError(at(1, 1)) && !isConfigError(new Error('x'))).toBe(true);
    expect(configErrorsOf(many).map((e) => e.detail)).toEqual(['2:3', '2:9', '5:1']);
    expect(() => throwIfAny([])).not.toThrow();
    expect(() => throwIfAny([at(1, 1)])).toThrow(ConfigError);
    expect(() => throwIfAny([at(1, 1), at(1, 2)])).toThrow(ConfigErrors);
  });
});

describe('formatLocation', () => {
  it('shows a file under the working directory relative to it, and one outside it absolute', () => {
    expect(formatLocation({ file: '/home/ada/repo/experiments/x.yaml', line: 3, col: 5 }, '/home/ada/repo')).toBe('experiments/x.yaml:3:5');
    expect(formatLocation({ file: '/tmp/t/x.yaml', line: 1, col: 2 }, '/tmp/ci/main')).toBe('/tmp/t/x.yaml:1:2');
    expect(formatLocation({ file: '--set train.epochs=x', line: 1, col: 14 }, '/')).toBe('"--set train.epochs=x"');
  });
});
