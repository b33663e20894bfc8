import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { assertSafeName, containedJoin, SAFE_NAME_PATTERN, unsafeNameReason } from './paths.ts';

describe('path safety (names are data, not paths)', () => {
  it('accepts the names experiments use', () => {
    for (const name of ['fnet', 'mlp_mixer', 'run_8', 'gMLP v2', 'a.b-c', 'sweep@2026']) {
      expect(unsafeNameReason(name)).toBeUndefined();
      expect(new RegExp(SAFE_NAME_PATTERN).test(name)).toBe(true);
    }
  });

  it('refuses anything that could leave or hide in the store', () => {
    expect(unsafeNameReason('../../../../elsewhere/x')).toBe('it contains a path separator');
    expect(unsafeNameReason('..')).toBe('it starts with "."');
    expect(unsafeNameReason('.hidden')).toBe('it starts with "."');
    expect(unsafeNameReason('/etc')).toBe('it contains a path separator');
    expect(unsafeNameReason('a\\b')).toBe('it contains a path separator');
    expect(unsafeNameReason('a\u0000b')).toBe('it contains a NUL character');
    expect(unsafeNameReason('')).toBe('it is empty');
    expect(unsafeNameReason('x'.repeat(201))).toBe('it is longer than 200 characters');
    for (const name of ['..', '../x', '/etc', '.x', 'a\nb']) expect(new RegExp(SAFE_NAME_PATTERN).test(name)).toBe(false);
    expect(() => assertSafeName('../x', 'experiment name')).toThrow('experiment name "../x" cannot name a directory: it contains a path separator');
  });

  it('joins only inside the root', () => {
    expect(containedJoin('/runs', 'exp', 'run1')).toBe(resolve('/runs/exp/run1'));
    expect(containedJoin('/runs', 'a/b/../c')).toBe(join(resolve('/runs'), 'a', 'c'));
    expect(() => containedJoin('/runs', '..', 'x')).toThrow('leaves');
    expect(() => containedJoin('/runs', 'a/../../x')).toThrow('leaves');
    expect(() => containedJoin('/runs', '/etc/passwd')).toThrow('is not relative');
  });
});
