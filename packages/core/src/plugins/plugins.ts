import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadExperiment } from '../config/load.ts';
import { parseYamlFile } from '../config/source.ts';
import { ConfigError, describeValue, type ConfigPath } from '../errors.ts';
import type { Registries, SourceLocation } from '../registry/kinds.ts';

/* ------------------------------------------------------------------------------------------ *
 * Plugins: a user's TypeScript or JavaScript modules that register blocks, datasets,          *
 * transforms, optimizers, schedules or callbacks through the same `register` calls the        *
 * built-ins use. They are code, so they load only from paths a user wrote: an experiment's    *
 * `plugins: [./my_blocks.ts]` or a project's tessera.config.yaml, each path relative to the   *
 * file that lists it. Nothing is discovered by scanning, nothing comes from data.             *
 * ------------------------------------------------------------------------------------------ */

/** The project file whose `plugins:` apply to every experiment below its folder. */
export const PROJECT_CONFIG = 'tessera.config.yaml';

/**
 * What a plugin module exports: `register(registries)` (named, or as the default export, or a
 * default object with `register`). It may be async.
 */
export type PluginRegister = (registries: Registries) => void | Promise<void>;

/** One plugin as a config lists it: the path as written and where. */
export interface PluginRef {
  /** As written: relative to the listing file's folder, or absolute. */
  path: string;
  /** The folder relative paths resolve against. */
  baseDir: string;
  location?: SourceLocation;
  /** The config path of the entry, e.g. ['plugins', 0]. */
  yamlPath: ConfigPath;
}

export const pluginsSchema = {
  type: 'array',
  items: { type: 'string', minLength: 1 },
  description:
    'Modules (.ts, .js, .mjs) that register your own blocks, datasets, transforms, optimizers or callbacks, ' +
    'relative to this file; each exports register(registries). Loaded before the file is validated.',
};

/** Plugins already loaded into a registries object (absolute paths), so a second load is a no-op. */
const loaded = new WeakMap<Registries, Set<string>>();

/** The absolute paths of the plugins loaded into `registries` so far, in load order. */
export function loadedPlugins(registries: Registries): string[] {
  return [...(loaded.get(registries) ?? [])];
}

function pluginError(ref: PluginRef, message: string, cause?: unknown): ConfigError {
  return new ConfigError({ location: ref.location, path: ref.yamlPath, message }, cause === undefined ? undefined : { cause });
}

function registerFunction(module: Record<string, unknown>): PluginRegister | undefined {
  const candidates = [module.register, module.default, (module.default as Record<string, unknown> | undefined)?.register];
  return candidates.find((c): c is PluginRegister => typeof c === 'function');
}

/**
 * Imports each plugin and calls its `register(registries)`, in order. A missing file, a module
 * that throws while loading or registering, a module without `register`, or an entry whose name
 * is already taken is a ConfigError located at the plugin's entry (the CLI exits 2), with the
 * cause chained. Returns the absolute paths loaded by this call.
 */
export async function loadPlugins(registries: Registries, refs: readonly PluginRef[]): Promise<string[]> {
  const done = loaded.get(registries) ?? new Set<string>();
  loaded.set(registries, done);
  const fresh: string[] = [];
  for (const ref of refs) {
    if (typeof ref.path !== 'string' || ref.path === '') throw pluginError(ref, `a plugin is a path to a module, got ${describeValue(ref.path)}`);
    const file = pluginFile(ref);
    if (done.has(file)) continue;
    if (!existsSync(file) || !statSync(file).isFile()) throw pluginError(ref, `plugin "${ref.path}" not found (looked for ${file})`);
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (error) {
      throw pluginError(ref, `plugin "${ref.path}" failed to load: ${(error as Error)?.message ?? String(error)}`, error);
    }
    const register = registerFunction(module);
    if (!register) throw pluginError(ref, `plugin "${ref.path}" exports no register(registries) function`);
    try {
      await register(registries);
    } catch (error) {
      throw pluginError(ref, `plugin "${ref.path}" failed to register: ${(error as Error)?.message ?? String(error)}`, error);
    }
    done.add(file);
    fresh.push(file);
  }
  return fresh;
}

/** The module a plugin entry names: absolute as written, else relative to the folder of the file that listed it. */
export function pluginFile(ref: PluginRef): string {
  return isAbsolute(ref.path) ? ref.path : resolve(ref.baseDir, ref.path);
}

/** The plugin entries of a config value (`plugins:`), located through `locate`. */
export function pluginRefs(value: unknown, baseDir: string, locate?: (path: ConfigPath) => SourceLocation | undefined): PluginRef[] {
  if (value === undefined) return [];
  const at = (path: ConfigPath) => ({ yamlPath: path, location: locate?.(path) });
  if (!Array.isArray(value)) throw new ConfigError({ ...at(['plugins']), path: ['plugins'], expected: 'a list of module paths', found: describeValue(value) });
  return value.map((path, i) => ({ path: path as string, baseDir, ...at(['plugins', i]) }));
}

/** The nearest tessera.config.yaml at or above `dir`, if any. */
export function findProjectConfig(dir: string): string | undefined {
  for (let current = resolve(dir); ; current = dirname(current)) {
    const candidate = join(current, PROJECT_CONFIG);
    if (existsSync(candidate)) return candidate;
    if (dirname(current) === current) return undefined;
  }
}

/** The plugins listed by the nearest tessera.config.yaml at or above `dir`. */
export function projectPluginRefs(dir: string): PluginRef[] {
  const file = findProjectConfig(dir);
  if (!file) return [];
  const parsed = parseYamlFile(file);
  const value = parsed.value as Record<string, unknown>;
  const unknown = Object.keys(value ?? {}).filter((key) => key !== 'plugins');
  if (unknown.length > 0) {
    throw new ConfigError({ location: parsed.locations.key([unknown[0]!]), path: [unknown[0]!], message: `unknown key "${unknown[0]}" in ${PROJECT_CONFIG} (it holds only \`plugins\`)` });
  }
  return pluginRefs(value?.plugins, dirname(file), (path) => parsed.locations.value(path));
}

/**
 * The plugins an experiment file needs: its project's (tessera.config.yaml at or above the
 * file) and its own `plugins:` (merged through `extends`, each path relative to the file that
 * wrote it), in load order.
 */
export function experimentPluginRefs(file: string, overrides: readonly string[] = []): PluginRef[] {
  const project = projectPluginRefs(dirname(resolve(file)));
  const experiment = loadExperiment(file, { overrides });
  const own = pluginRefs(experiment.config.plugins, dirname(experiment.file), experiment.locate).map((ref) => ({
    ...ref,
    // A base file's plugin is relative to the base file.
    baseDir: ref.location && !ref.location.file.startsWith('--set ') ? dirname(ref.location.file) : ref.baseDir,
  }));
  return [...project, ...own];
}

/** Loads the plugins an experiment file needs (experimentPluginRefs). Call before validating the file against `registries`. */
export async function loadExperimentPlugins(registries: Registries, file: string, overrides: readonly string[] = []): Promise<string[]> {
  return loadPlugins(registries, experimentPluginRefs(file, overrides));
}
