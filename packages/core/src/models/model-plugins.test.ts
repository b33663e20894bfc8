import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { MlflowClient } from '@tessera/mlflow';
import { ConfigError } from '../errors.ts';
import { createRegistries } from '../registry/kinds.ts';
import { loadModelPlugins, modelPluginRefs, withRecordedPlugins } from './model-plugins.ts';
import { loadModelDir } from './predictor.ts';
import { modelMetadata } from './metadata.ts';
import { fetchMlflowModel } from './mlflow.ts';
import type { DatasetInfo } from '../registry/kinds.ts';
import type { ExperimentConfig } from '../schema/types.ts';
import { isDownloadedModel, resolveModel } from './resolve.ts';
import { copyModelDir } from '../graph/io.ts';

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
  it('loads the absolute paths model.json names, each named as it loads, once per registries', async () => {
    const first = plugin(join(work, 'lib'), 'first.mjs', 'from_first');
    const second = plugin(join(work, 'lib'), 'second.mjs', 'from_second');
    const dir = modelDir('both', { plugins: [first, second] });
    const registries = createRegistries();
    const logged: string[] = [];
    expect(await loadModelPlugins(registries, { dir }, (m) => logged.push(m))).toEqual([first, second]);
    expect(registries.datasets.has('from_first') && registries.datasets.has('from_second')).toBe(true);
    expect(logged).toEqual([first, second].map((path) => `loading plugin ${path} (recorded in ${join(dir, 'model.json')})`));
    // Loaded once per registries, as an experiment's plugins are (and not announced again).
    expect(await loadModelPlugins(registries, { dir }, (m) => logged.push(m))).toEqual([]);
    expect(logged).toHaveLength(2);
  });

  it('refuses a relative entry, which could only name a module shipped with the model: located, never imported', async () => {
    const dir = modelDir('relative', { plugins: ['./beside.mjs'] });
    writeFileSync(join(dir, 'beside.mjs'), 'globalThis.__tesseraBesideLoaded = true;\nexport function register() {}\n');
    const error = await loadModelPlugins(createRegistries(), { dir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const text = readFileSync(join(dir, 'model.json'), 'utf8').split('\n');
    const line = text.findIndex((l) => l.includes('./beside.mjs'));
    expect((error as ConfigError).render('/')).toBe(
      `${join(dir, 'model.json').slice(1)}:${line + 1}:${text[line]!.indexOf('"') + 1} userDefinedMetadata.tessera.plugins[0]: plugin string "./beside.mjs" is not an absolute path: ` +
        'a model\'s recorded plugins load only from absolute paths (exp run and exp export --init record them so), never from beside the model; ' +
        'if you trust the module, load it with --plugin PATH',
    );
    expect((globalThis as { __tesseraBesideLoaded?: boolean }).__tesseraBesideLoaded).toBeUndefined();
  });

  it('a corrupt or truncated model.json is a located error naming the file', () => {
    const dir = modelDir('truncated', { plugins: [] });
    const text = readFileSync(join(dir, 'model.json'), 'utf8');
    writeFileSync(join(dir, 'model.json'), text.slice(0, 40));
    const error = (() => {
      try {
        modelPluginRefs(dir);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    // Where the text stops (line 3 of the file written above).
    expect((error as ConfigError).render('/')).toMatch(
      new RegExp(`^${join(dir, 'model.json').slice(1)}:3:\\d+ model\\.json is not valid JSON \\(.+\\): the file is corrupt or truncated; export or download the model again$`),
    );
  });

  it('export\'s copy of a model.json replaces its plugin list, or removes it (its saved config\'s too)', () => {
    const json = JSON.stringify({ modelTopology: {}, userDefinedMetadata: { tessera: { plugins: ['/a.mjs'], config: { plugins: ['./a.mjs'], name: 'x' } } } });
    expect(JSON.parse(withRecordedPlugins(json, [])).userDefinedMetadata.tessera).toEqual({ config: { name: 'x' } });
    expect(JSON.parse(withRecordedPlugins(json, ['/b.mjs'])).userDefinedMetadata.tessera).toEqual({ plugins: ['/b.mjs'], config: { name: 'x' } });
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

  it('a model in the MLflow download cache is downloaded data, however MODEL names it (a models:/ URI or the cache path)', async () => {
    vi.stubEnv('TESSERA_CACHE', join(work, 'cache'));
    try {
      const cached = modelDir(join('cache', 'mlflow-models', 'm-1234'), { plugins: ['/never/loaded.mjs'] });
      const resolved = await resolveModel(cached, { cwd: work, runsDir: join(work, 'runs') });
      expect(resolved.downloaded).toBe(true);
      expect(await loadModelPlugins(createRegistries(), resolved)).toEqual([]);
      expect(isDownloadedModel(join(work, 'cache', 'mlflow-models'))).toBe(false);
      expect((await resolveModel(modelDir('local', {}), { cwd: work, runsDir: join(work, 'runs') })).downloaded).toBeUndefined();
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('downloading a model refuses an artifact name that leaves its directory (the names come from the server)', async () => {
    const fetched: string[] = [];
    const client = {
      trackingUri: 'http://127.0.0.1:1',
      listLoggedModelArtifacts: async () => [{ path: 'model.json', isDir: false }, { path: '../../escaped.mjs', isDir: false }],
      downloadLoggedModelFile: async (_id: string, file: string, to: string) => {
        fetched.push(to);
        mkdirSync(dirname(to), { recursive: true });
        writeFileSync(to, file === 'model.json' ? '{}' : 'export function register() {}');
      },
    } as unknown as MlflowClient;
    const cacheDir = join(work, 'download-cache');
    await expect(fetchMlflowModel('models:/m-0001', { client, cacheDir })).rejects.toThrow(
      'models:/m-0001: the MLflow artifacts name "../../escaped.mjs", which is not a file in the model\'s directory',
    );
    expect(fetched).toHaveLength(1);
    expect(existsSync(join(work, 'escaped.mjs'))).toBe(false);
    expect(existsSync(join(cacheDir, 'm-0001'))).toBe(false);
  });

  it('copying a model refuses a weights path that leaves its directory (model.json may come from a download)', () => {
    const dir = modelDir('escaping', {});
    writeFileSync(join(work, 'secret.txt'), 'secret');
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ['../secret.txt'], weights: [] }] }));
    expect(() => copyModelDir(dir, join(work, 'copy'))).toThrow(`${join(dir, 'model.json')}: weightsManifest names "../secret.txt", which is not a file in the model directory`);
    expect(existsSync(join(work, 'copy'))).toBe(false);
  });

  it('a model records each plugin once, though the project and the experiment both list it', () => {
    const config = { name: 'x', data: { type: 'synthetic', image_shape: [4, 4, 3] }, model: {}, train: {} } as unknown as ExperimentConfig;
    const dataset = { info: { inputShape: [4, 4, 3], numClasses: 2, counts: {} } as unknown as DatasetInfo, state: () => ({}) };
    const metadata = modelMetadata({ config, dataset, which: 'init', source: 'x.yaml', seed: 1, plugins: ['/p/a.ts', '/p/b.ts', '/p/a.ts'] });
    expect(metadata.plugins).toEqual(['/p/a.ts', '/p/b.ts']);
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
