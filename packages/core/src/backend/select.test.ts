import { describe, expect, it } from 'vitest';
import type { BackendLoader, BackendName, LoadResult } from './loaders.ts';
import { BackendUnavailableError, describeBackends, selectBackend } from './select.ts';

/** A loader that answers as told and records that it was tried. */
function fake(name: BackendName, result: LoadResult, tried: BackendName[]): BackendLoader {
  return {
    name,
    async load() {
      tried.push(name);
      return result;
    },
  };
}

const ok = (summary: string): LoadResult => ({ ok: true, detail: { summary, tfjsBackend: summary } });
const no = (why: string): LoadResult => ({ ok: false, why });

function world(results: Record<BackendName, LoadResult>) {
  const tried: BackendName[] = [];
  const loaders = (['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const).map((name) => fake(name, results[name], tried));
  const logs: string[] = [];
  return { loaders, tried, logs, log: (line: string) => logs.push(line) };
}

describe('selectBackend', () => {
  it('auto takes the best backend when it loads and tries nothing else', async () => {
    const w = world({ 'tensorflow-gpu': ok('gpu'), tensorflow: ok('native'), wasm: ok('wasm'), cpu: ok('cpu') });
    const selection = await selectBackend('auto', w.log, { loaders: w.loaders });
    expect(selection.name).toBe('tensorflow-gpu');
    expect(selection.skipped).toEqual([]);
    expect(selection.reason).toBe('auto: the best backend, and it loaded');
    expect(w.tried).toEqual(['tensorflow-gpu']);
    expect(w.logs).toEqual(['backend: tensorflow-gpu - gpu; auto: the best backend, and it loaded']);
  });

  it('auto falls back in order and says why each better backend was skipped', async () => {
    const w = world({
      'tensorflow-gpu': no('not installed (@tensorflow/tfjs-node-gpu)'),
      tensorflow: no('addon not built: run `pnpm setup:tensorflow`'),
      wasm: ok('WebAssembly, SIMD, 1 thread'),
      cpu: ok('cpu'),
    });
    const selection = await selectBackend('auto', w.log, { loaders: w.loaders });
    expect(selection.name).toBe('wasm');
    expect(selection.detail.summary).toBe('WebAssembly, SIMD, 1 thread');
    expect(selection.skipped).toEqual([
      { name: 'tensorflow-gpu', why: 'not installed (@tensorflow/tfjs-node-gpu)' },
      { name: 'tensorflow', why: 'addon not built: run `pnpm setup:tensorflow`' },
    ]);
    expect(selection.reason).toBe('auto: the best backend that loaded (skipped tensorflow-gpu, tensorflow)');
    expect(w.tried).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm']);
    expect(w.logs).toEqual([
      'backend: wasm - WebAssembly, SIMD, 1 thread; auto: the best backend that loaded (skipped tensorflow-gpu, tensorflow)',
      '  skipped tensorflow-gpu: not installed (@tensorflow/tfjs-node-gpu)',
      '  skipped tensorflow: addon not built: run `pnpm setup:tensorflow`',
    ]);
  });

  it('auto reaches the cpu backend when everything better fails to load', async () => {
    const w = world({
      'tensorflow-gpu': no('a'),
      tensorflow: no('failed to load: libtensorflow_cc.so.2: cannot open shared object file'),
      wasm: no('c'),
      cpu: ok('cpu'),
    });
    const selection = await selectBackend('auto', w.log, { loaders: w.loaders });
    expect(selection.name).toBe('cpu');
    expect(selection.skipped.map((s) => s.name)).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm']);
  });

  it('a named backend is the only one tried, and its reason is the config', async () => {
    const w = world({ 'tensorflow-gpu': ok('gpu'), tensorflow: ok('native'), wasm: ok('wasm'), cpu: ok('cpu') });
    const selection = await selectBackend('wasm', w.log, { loaders: w.loaders });
    expect(selection).toMatchObject({ name: 'wasm', skipped: [], reason: 'requested by the config (backend: wasm)' });
    expect(w.tried).toEqual(['wasm']);
  });

  it('a named backend that does not load is an error carrying the reason, not a silent fallback', async () => {
    const w = world({
      'tensorflow-gpu': ok('gpu'),
      tensorflow: no('addon not built: run `pnpm setup:tensorflow`'),
      wasm: ok('wasm'),
      cpu: ok('cpu'),
    });
    const failure = selectBackend('tensorflow', w.log, { loaders: w.loaders });
    await expect(failure).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(failure).rejects.toThrow(
      "backend 'tensorflow' is not available: addon not built: run `pnpm setup:tensorflow` (use `backend: auto` to fall back to the best one that loads)",
    );
    expect(w.tried).toEqual(['tensorflow']);
    expect(w.logs).toEqual([]);
  });

  it('when nothing loads, auto lists every reason', async () => {
    const w = world({ 'tensorflow-gpu': no('a'), tensorflow: no('b'), wasm: no('c'), cpu: no('d') });
    await expect(selectBackend('auto', w.log, { loaders: w.loaders })).rejects.toThrow(
      'no TF.js backend could be loaded: tensorflow-gpu: a; tensorflow: b; wasm: c; cpu: d',
    );
  });

  it('an unknown backend name gets a did-you-mean and the valid names', async () => {
    const w = world({ 'tensorflow-gpu': ok('gpu'), tensorflow: ok('native'), wasm: ok('wasm'), cpu: ok('cpu') });
    await expect(selectBackend('tensorflw' as 'tensorflow', w.log, { loaders: w.loaders })).rejects.toThrow(
      "unknown backend 'tensorflw' (did you mean 'tensorflow'?); expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu",
    );
    expect(w.tried).toEqual([]);
  });
});

describe('describeBackends', () => {
  it('tries every backend and reports each one, available or with its reason', async () => {
    const w = world({ 'tensorflow-gpu': no('not installed'), tensorflow: ok('TensorFlow 2.12.1'), wasm: ok('wasm'), cpu: ok('cpu') });
    const reports = await describeBackends({ loaders: w.loaders });
    expect(reports.map(({ name, available, description }) => ({ name, available, description }))).toEqual([
      { name: 'tensorflow-gpu', available: false, description: 'not installed' },
      { name: 'tensorflow', available: true, description: 'TensorFlow 2.12.1' },
      { name: 'wasm', available: true, description: 'wasm' },
      { name: 'cpu', available: true, description: 'cpu' },
    ]);
    expect(w.tried).toEqual(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
  });
});
