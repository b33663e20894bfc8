import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

// A simulated full disk: the next write through a file handle writes half its bytes, then fails
// with ENOSPC (the tmpfs test of the fault suite does it for real where mounting is allowed).
const disk = vi.hoisted(() => ({ full: false }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    open: async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      if (!disk.full) return handle;
      const writeFile = handle.writeFile.bind(handle);
      handle.writeFile = (async (data: string | Uint8Array) => {
        await writeFile(typeof data === 'string' ? data.slice(0, data.length / 2) : data.subarray(0, data.length / 2));
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      }) as typeof handle.writeFile;
      return handle;
    },
  };
});

const { writeFileAtomic } = await import('./atomic-write.ts');
const dir = mkdtempSync(join(tmpdir(), 'tessera-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('on a full disk keeps the previous file whole and leaves no temp file', async () => {
    const file = join(dir, 'loss.png');
    writeFileSync(file, 'previous');
    disk.full = true;
    await expect(writeFileAtomic(file, 'a new plot that does not fit')).rejects.toThrow(/ENOSPC/);
    disk.full = false;
    expect(readFileSync(file, 'utf8')).toBe('previous');
    expect(readdirSync(dir)).toEqual(['loss.png']);
    await writeFileAtomic(file, 'new');
    expect(readFileSync(file, 'utf8')).toBe('new');
  });
});
