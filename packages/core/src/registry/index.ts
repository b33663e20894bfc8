// `@tessera/core/registry`: what a package of entries (models, data, a user's own module) needs
// to declare and register them, without loading the engine, the tracking or the schema assembly.
export { Registry, RegistryError, didYouMean, type EntryBase, type JsonSchema } from './registry.ts';
// An entry's params: declared once as a JSON Schema, the defaults read from it (params.ts).
export { defaultsOf, type ParamsOf, type SchemaDefaults } from './params.ts';
export {
  createRegistries,
  type Registries,
  type SourceLocation,
  type BlockEntry,
  type BlockContext,
  type DatasetEntry,
  type DatasetContext,
  type DatasetInfo,
  type DataShape,
  type DataShapeContext,
  type Dataset,
  type Batch,
  type BatchOptions,
  type Split,
  type TransformEntry,
  type Transform,
  type TransformState,
  type RawImages,
  type OptimizerEntry,
  type ScheduleEntry,
  type CallbackEntry,
} from './kinds.ts';
// The node every entry is written as in YAML: `{type, ...params}`.
export type { EntryConfig } from '../schema/types.ts';
// Where downloads and decoded data are kept (TESSERA_CACHE, else ~/.cache/tessera).
export { cacheRoot } from './cache.ts';
// The plugin loader (which modules to load is decided by core's plugins/ and models/).
export { loadPlugins, loadedPlugins, pluginFile, pluginOf, type PluginRef, type PluginRegister } from './plugin-loader.ts';
// The errors an entry's `create` throws for a bad parameter: located by the caller.
export { ConfigError, ConfigErrors, describeValue, formatPath, type ConfigPath } from '../errors.ts';
