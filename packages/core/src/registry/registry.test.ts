import { describe, expect, it } from 'vitest';
import { Registry, didYouMean } from './registry.ts';

const entry = (type: string) => ({ type, description: `${type} block`, params: { type: 'object' } });

describe('Registry', () => {
  it('returns what was registered and lists types sorted', () => {
    const r = new Registry('block').register(entry('dense')).register(entry('dropout'));
    expect(r.get('dense').description).toBe('dense block');
    expect(r.types()).toEqual(['dense', 'dropout']);
  });

  it('refuses a duplicate name', () => {
    const r = new Registry('block').register(entry('dense'));
    expect(() => r.register(entry('dense'))).toThrow(/block type "dense" is already registered/);
  });

  it('names the valid types and a did-you-mean for an unknown type', () => {
    const r = new Registry('block').register(entry('dense')).register(entry('layer_norm'));
    expect(() => r.get('layer_nrom')).toThrow(
      'unknown block type "layer_nrom" (did you mean "layer_norm"?); valid types: dense, layer_norm',
    );
  });

  it('refuses names that are not snake_case', () => {
    expect(() => new Registry('block').register(entry('LayerNorm'))).toThrow(/snake_case/);
  });

  it('suggests nothing when no name is close', () => {
    expect(didYouMean('convolution', ['dense', 'dropout'])).toBeUndefined();
    expect(didYouMean('dens', ['dense', 'dropout'])).toBe('dense');
  });
});
