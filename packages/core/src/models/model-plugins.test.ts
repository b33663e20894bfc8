import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistries } from '../registry/kinds.ts';
import { loadModelPlugins, modelPluginRefs } from './model-plugins.ts';
import { loadModelDir } from './predictor.ts';

const work = mkdtempSync(join(tmpdir(), 'tessera-model-plugins-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A model directory whose model.json holds only the Tessera metadata (and topology) given. */
function modelDir(name: string, tessera: Record<string, unknown>, topology: unknown = {}): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.json'), `${JSON.stringify({ modelTopology: topology, weightsManifest: [], userDefinedMetadata: { tessera } }, null, 1)}\n`);
  return dir;
}

/** A plugin module that registers a dataset named `type` (cheap to tell apart from the built-ins). */
function plugin(dir: string, file: string, type: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  writeFileSync(path, `export function register(r) { r.datasets.register({ type: ${JSON.stringify(type)}, description: '', params: {}, create() {} }); }\n`);
  return path;
}

describe('a model\'s plugins', () => {
  it('loads those model.json names: absolute, or relative to the model directory', async () => {
    const absolute = plugin(join(work, 'lib'), 'absolute.mjs', 'from_absolute');
    const dir = modelDir('both', { plugins: [absolute, './beside.mjs'] });
    plugin(dir, 'beside.mjs', 'from_beside');
    const registries = createRegistries();
    expect(await loadModelPlugins(registries, { dir })).toEqual([absolute, join(dir, 'beside.mjs')]);
    expect(registries.datasets.has('from_absolute') && registries.datasets.has('from_beside')).toBe(true);
    // Loaded once per registries, as an experiment's plugins are.
    expect(await loadModelPlugins(registries, { dir })).toEqual([]);
  });

  it('falls back to the saved config\'s plugins of a model recorded before `plugins`, and needs none without them', () => {
    const older = modelDir('older', { config: { plugins: ['/somewhere/blocks.ts'] } });
    expect(modelPluginRefs(older).map((ref) => [ref.path, ref.yamlPath])).toEqual([['/somewhere/blocks.ts', ['userDefinedMetadata', 'tessera', 'config', 'plugins', 0]]]);
    expect(modelPluginRefs(modelDir('none', { config: {} }))).toEqual([]);
  });

  it('never loads the plugins a model fetched from MLflow names: its metadata is downloaded data', async () => {
    const dir = modelDir('downloaded', { plugins: ['./never.mjs'] });
    writeFileSync(join(dir, 'never.mjs'), 'globalThis.__tesseraNeverLoaded = true;\nexport function register() {}\n');
    expect(await loadModelPlugins(createRegistries(), { dir, downloaded: true })).toEqual([]);
    expect((globalThis as { __tesseraNeverLoaded?: boolean }).__tesseraNeverLoaded).toBeUndefined();
  });

  it('a layer class nobody registered names the plugins the model was trained with', async () => {
    const topology = { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'NoSuchPluginLayer', config: { name: 'x', batch_input_shape: [null, 2] } }] } };
    const dir = modelDir('unregistered', { plugins: ['/home/me/blocks.ts'] }, topology);
    await expect(loadModelDir(dir, 'exported')).rejects.toThrow(
      'cannot load a model from exported/model.json: its layer class NoSuchPluginLayer is not registered; it was trained with the plugin(s) /home/me/blocks.ts: ' +
        'load them with --plugin PATH (or list them in tessera.config.yaml)',
    );
  });
});
