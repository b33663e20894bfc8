import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseYamlText } from '../config/source.ts';
import { ConfigError, describeValue, type ConfigPath } from '../errors.ts';
import { MODEL_FILE } from '../graph/io.ts';
import { pluginRefs } from '../plugins/plugins.ts';
import { loadedPlugins, loadPlugins, type PluginRef } from '../registry/plugin-loader.ts';
import type { Registries, SourceLocation } from '../registry/kinds.ts';
import type { ResolvedModel } from './resolve.ts';

/* ------------------------------------------------------------------------------------------ *
 * A trained model whose layers or transforms come from plugins needs those modules loaded     *
 * before TF.js can rebuild it. Its model.json names them (metadata `plugins`, absolute paths, *
 * recorded by `exp run` and `exp export --init`); they load through the one plugin loader,    *
 * with its located errors. Plugins are code and model.json is data: only an absolute path is   *
 * loaded (a relative one would name a module shipped beside the model), never from a model     *
 * fetched from MLflow, and each module is named as it loads.                                  *
 * ------------------------------------------------------------------------------------------ */

/** Where in model.json the plugin list sits, and the older place (a run's saved config, before `plugins` was recorded). */
const PLUGIN_PATHS: readonly ConfigPath[] = [
  ['userDefinedMetadata', 'tessera', 'plugins'],
  ['userDefinedMetadata', 'tessera', 'config', 'plugins'],
];

type TesseraJson = { plugins?: unknown; config?: { plugins?: unknown } };
type ModelJson = { userDefinedMetadata?: { tessera?: TesseraJson } };

interface ModelJsonPlugins {
  text: string;
  /** As model.json lists them; empty when it needs none. */
  listed: unknown[];
  /** Where the list sits in model.json. */
  at: ConfigPath;
}

/** model.json parsed; a corrupt or truncated file is a located ConfigError naming it. */
function parseModelJson(text: string, file: string): ModelJson {
  try {
    return JSON.parse(text) as ModelJson;
  } catch (error) {
    // JSON.parse says what is wrong but not where; the YAML parser (JSON is YAML) says where.
    let location: SourceLocation = { file, line: 1, col: 1 };
    try {
      parseYamlText(text, file);
    } catch (yamlError) {
      if (yamlError instanceof ConfigError && yamlError.location) location = yamlError.location;
    }
    throw new ConfigError(
      { location, message: `${MODEL_FILE} is not valid JSON (${(error as Error).message}): the file is corrupt or truncated`, hint: 'export or download the model again' },
      { cause: error },
    );
  }
}

function readModelPlugins(dir: string): ModelJsonPlugins {
  const file = join(dir, MODEL_FILE);
  const text = readFileSync(file, 'utf8');
  const tessera = parseModelJson(text, file).userDefinedMetadata?.tessera;
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
 * The plugins a model directory names, each located at its entry in model.json. Each must be an
 * absolute path: a relative entry is refused (ConfigError), since it could only name a module
 * that came with the model. Empty for a model that needs none.
 */
export function modelPluginRefs(dir: string): PluginRef[] {
  const { text, listed, at } = readModelPlugins(dir);
  if (listed.length === 0) return [];
  // model.json is JSON, so YAML: parsed again only to say where each entry is written.
  const file = join(dir, MODEL_FILE);
  const { locations } = parseYamlText(text, file);
  const refs = pluginRefs(listed, dir, (path) => locations.value([...at, ...path.slice(1)])).map((ref) => ({ ...ref, yamlPath: [...at, ...ref.yamlPath.slice(1)] }));
  for (const ref of refs) {
    if (typeof ref.path === 'string' && !isAbsolute(ref.path)) {
      throw new ConfigError({
        location: ref.location,
        path: ref.yamlPath,
        message: `plugin ${describeValue(ref.path)} is not an absolute path: a model's recorded plugins load only from absolute paths (exp run and exp export --init record them so), never from beside the model`,
        hint: 'if you trust the module, load it with --plugin PATH',
      });
    }
  }
  return refs;
}

/**
 * Loads the plugins a model names into `registries` before the model is loaded, saying which
 * module it loads (`log`, one line each: the user sees what code runs). A model fetched from
 * MLflow is data downloaded from a server: plugins are code, so its list is never loaded (give
 * them with --plugin or tessera.config.yaml). Returns the modules loaded by this call.
 */
export async function loadModelPlugins(
  registries: Registries,
  model: Pick<ResolvedModel, 'dir' | 'downloaded'>,
  log: (message: string) => void = () => {},
): Promise<string[]> {
  if (model.downloaded) return [];
  const fresh: string[] = [];
  for (const ref of modelPluginRefs(model.dir)) {
    if (!loadedPlugins(registries).includes(ref.path)) log(`loading plugin ${ref.path} (recorded in ${join(model.dir, MODEL_FILE)})`);
    try {
      fresh.push(...(await loadPlugins(registries, [ref])));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new ConfigError(
        { location: error.location, path: error.path, message: error.detail, hint: 'the model was trained with it; if the module moved, load it from where it is now with --plugin PATH' },
        { cause: error.cause },
      );
    }
  }
  return fresh;
}

/**
 * `model.json`'s metadata with its plugin list replaced: by `plugins` (absolute paths a user
 * gave), or removed when empty (its saved config's list too). What `exp export` writes for a
 * model whose recorded list is not to be trusted (one fetched from MLflow) or has moved.
 */
export function withRecordedPlugins(modelJson: string, plugins: readonly string[]): string {
  const json = JSON.parse(modelJson) as ModelJson;
  const tessera = json.userDefinedMetadata?.tessera;
  if (!tessera) return modelJson;
  delete tessera.plugins;
  if (tessera.config) delete tessera.config.plugins;
  if (plugins.length > 0) tessera.plugins = [...plugins];
  return JSON.stringify(json);
}
