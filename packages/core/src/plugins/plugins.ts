import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadExperiment } from '../config/load.ts';
import { parseYamlFile } from '../config/source.ts';
import { ConfigError, describeValue, type ConfigPath } from '../errors.ts';
import type { Registries, SourceLocation } from '../registry/kinds.ts';
import { loadPlugins, type PluginRef } from '../registry/plugin-loader.ts';

/* ------------------------------------------------------------------------------------------ *
 * Plugins: a user's TypeScript or JavaScript modules that register blocks, datasets,          *
 * transforms, optimizers, schedules or callbacks through the same `register` calls the        *
 * built-ins use. They are code, so they load only from paths a user wrote: an experiment's    *
 * `plugins: [./my_blocks.ts]` or a project's tessera.config.yaml, each path relative to the   *
 * file that lists it. Nothing is discovered by scanning, nothing comes from data.             *
 * ------------------------------------------------------------------------------------------ */

/** The project file whose `plugins:` apply to every experiment below its folder. */
export const PROJECT_CONFIG = 'tessera.config.yaml';

export const pluginsSchema = {
  type: 'array',
  items: { type: 'string', minLength: 1 },
  description:
    'Modules (.ts, .js, .mjs) that register your own blocks, datasets, transforms, optimizers or callbacks, ' +
    'relative to this file; each exports register(registries). Loaded before the file is validated.',
};

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
