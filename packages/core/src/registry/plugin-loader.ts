import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, describeValue, type ConfigPath } from '../errors.ts';
import type { Registries, SourceLocation } from './kinds.ts';
import type { EntryBase, Registry } from './registry.ts';

/* ------------------------------------------------------------------------------------------ *
 * The plugin loader: imports a user's modules and calls their `register(registries)`, the    *
 * same call the built-ins make. Here, beside the registry, so that a batch worker thread       *
 * (packages/data) loads a plugin exactly as the training thread did; which modules to load    *
 * (an experiment's `plugins:`, tessera.config.yaml, a model's metadata) is decided elsewhere  *
 * (plugins/plugins.ts, models/model-plugins.ts).                                              *
 * ------------------------------------------------------------------------------------------ */

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

/** Plugins already loaded into a registries object (absolute paths), so a second load is a no-op. */
const loaded = new WeakMap<Registries, Set<string>>();

/** The absolute paths of the plugins loaded into `registries` so far, in load order. */
export function loadedPlugins(registries: Registries): string[] {
  return [...(loaded.get(registries) ?? [])];
}

/** The plugin module each entry object came from (what its register() added). */
const entryPlugins = new WeakMap<object, string>();

/**
 * The plugin module (absolute path) whose register() added `entry`; undefined for a built-in or
 * a program's own entry. A batch worker thread loads that module to rebuild a plugin's transform.
 */
export function pluginOf(entry: object): string | undefined {
  return entryPlugins.get(entry);
}

function allEntries(registries: Registries): EntryBase[] {
  return (Object.values(registries) as Registry<EntryBase>[]).flatMap((registry) => registry.list());
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
    const before = new Set(allEntries(registries));
    try {
      await register(registries);
    } catch (error) {
      throw pluginError(ref, `plugin "${ref.path}" failed to register: ${(error as Error)?.message ?? String(error)}`, error);
    }
    for (const entry of allEntries(registries)) if (!before.has(entry)) entryPlugins.set(entry, file);
    done.add(file);
    fresh.push(file);
  }
  return fresh;
}

/** The module a plugin entry names: absolute as written, else relative to the folder of the file that listed it. */
export function pluginFile(ref: PluginRef): string {
  return isAbsolute(ref.path) ? ref.path : resolve(ref.baseDir, ref.path);
}
