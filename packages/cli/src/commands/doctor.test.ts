import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CIFAR100 } from '@tessera/data';
import { checkBackends, checkCifar100, checkNode, checkTracking, formatChecks } from './doctor.ts';
import { main } from '../main.ts';

const root = mkdtempSync(join(tmpdir(), 'tessera-doctor-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('exp doctor checks', () => {
  it('wants Node 20 or newer', () => {
    expect(checkNode('20.1.0').ok).toBe(true);
    expect(checkNode('18.19.0')).toMatchObject({ ok: false, fix: expect.stringContaining('Node 20') });
  });

  it('reports each backend, the one auto would take, and how to get the native one', () => {
    const checks = checkBackends(
      [
        { name: 'tensorflow', available: false, description: 'not installed' },
        { name: 'cpu', available: true, description: 'JavaScript' },
      ],
      'run scripts/setup-tensorflow.sh',
    );
    expect(checks.map((c) => [c.name, c.ok])).toEqual([['backend tensorflow', false], ['backend cpu', true], ['backend auto', true]]);
    expect(checks[0]!.fix).toBe('run scripts/setup-tensorflow.sh');
    expect(checks[2]!.detail).toBe('backend: auto would use cpu');
    expect(checkBackends([], '').at(-1)!.ok).toBe(false);
  });

  it('finds CIFAR-100 where a run reads it, and points at a copy it would not read', () => {
    const data = join(root, 'data');
    mkdirSync(data);
    const cache = join(root, 'cache');
    expect(checkCifar100(CIFAR100, cache, root, {}).ok).toBe(false);
    writeFileSync(join(data, 'train.bin.gz'), '');
    writeFileSync(join(data, 'test.bin'), '');
    expect(checkCifar100(CIFAR100, cache, root, { TESSERA_DATA_DIR: data })).toMatchObject({ ok: true, detail: `CIFAR-100 binaries in ${data}` });
    const shared = join(root, 'shared', 'data', 'cifar-100');
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, 'cifar-100-binary.tar.gz'), '');
    expect(checkCifar100(CIFAR100, cache, root, {})).toMatchObject({ ok: false, fix: `export TESSERA_DATA_DIR=${shared} (or set data.dir in the experiment)` });
  });

  it('checks that the run store is writable and prints fixes under failures', () => {
    const [local] = checkTracking(join(root, 'runs'), {});
    expect(local).toMatchObject({ ok: true, detail: `runs are recorded in ${join(root, 'runs')}` });
    const text = formatChecks([{ name: 'node', ok: false, detail: 'Node 18', fix: 'install Node 20' }, { name: 'data', ok: false, optional: true, detail: 'none' }]);
    expect(text).toBe('FAIL  node                   Node 18\n      fix: install Node 20\n --   data                   none');
  });

  it('runs as a command and exits 0 when the essentials are there', async () => {
    const out: string[] = [];
    expect(await main(['doctor'], { stdout: { write: (t: string) => out.push(t) } })).toBe(0);
    expect(out.join('')).toMatch(/ ok {3}backend cpu/);
  });
});
