import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseYamlText } from '../config/source.ts';
import { ConfigError, type ConfigPath } from '../errors.ts';
import { MODEL_FILE } from '../graph/io.ts';
import { pluginRefs } from '../plugins/plugins.ts';
import { loadPlugins, type PluginRef } from '../registry/plugin-loader.ts';
import type { Registries } from '../registry/kinds.ts';
import type { ResolvedModel } from './resolve.ts';

/* ------------------------------------------------------------------------------------------ *
 * A trained model whose layers or transforms come from plugins needs those modules loaded     *
 * before TF.js can rebuild it. Its model.json names them (metadata `plugins`, absolute paths, *
 * recorded by `exp run` and `exp export --init`); they load through the one plugin loader,    *
 * with the same path rules and located errors as an experiment's `plugins:`.                  *
 * ------------------------------------------------------------------------------------------ */

/** Where in model.json the plugin list sits, and the older place (a run's saved config, before `plugins` was recorded). */
const PLUGIN_PATHS: readonly ConfigPath[] = [
  ['userDefinedMetadata', 'tessera', 'plugins'],
  ['userDefinedMetadata', 'tessera', 'config', 'plugins'],
];

interface ModelJsonPlugins {
  text: string;
  /** As model.json lists them; empty when it needs none. */
  listed: unknown[];
  /** Where the list sits in model.json. */
  at: ConfigPath;
}

function readModelPlugins(dir: string): ModelJsonPlugins {
  const text = readFileSync(join(dir, MODEL_FILE), 'utf8');
  const json = JSON.parse(text) as { userDefinedMetadata?: { tessera?: { plugins?: unknown; config?: { plugins?: unknown } } } };
  const tessera = json.userDefinedMetadata?.tessera;
  const at = tessera?.plugins !== undefined ? PLUGIN_PATHS[0]! : PLUGIN_PATHS[1]!;
  const listed = tessera?.plugins ?? tessera?.config?.plugins;
  return { text, listed: Array.isArray(listed) ? listed : [], at };
}

/** The plugin paths a model directory names, as written (for messages); empty when unreadable. */
export function recordedModelPlugins(dir: string): string[] {
  try {
    return readModelPlugins(dir).listed.map(String);
  } catch {
    return [];
  }
}

/**
 * The plugins a model directory names, each located at its entry in model.json: absolute, or
 * relative to the model directory. Empty for a model that needs none.
 */
export function modelPluginRefs(dir: string): PluginRef[] {
  const { text, listed, at } = readModelPlugins(dir);
  if (listed.length === 0) return [];
  // model.json is JSON, so YAML: parsed again only to say where each entry is written.
  const file = join(dir, MODEL_FILE);
  const { locations } = parseYamlText(text, file);
  return pluginRefs(listed, dir, (path) => locations.value([...at, ...path.slice(1)])).map((ref) => ({ ...ref, yamlPath: [...at, ...ref.yamlPath.slice(1)] }));
}

/**
 * Loads the plugins a model names into `registries` before the model is loaded. A model fetched
 * from MLflow is data downloaded from a server: plugins are code, so its list is never loaded
 * (give them with --plugin or tessera.config.yaml). Returns the modules loaded by this call.
 */
export async function loadModelPlugins(registries: Registries, model: Pick<ResolvedModel, 'dir' | 'downloaded'>): Promise<string[]> {
  if (model.downloaded) return [];
  try {
    return await loadPlugins(registries, modelPluginRefs(model.dir));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(
      { location: error.location, path: error.path, message: error.detail, hint: 'the model was trained with it; if the module moved, load it from where it is now with --plugin PATH' },
      { cause: error.cause },
    );
  }
}
