// `@tessera/core`: the public API a program uses. Narrower entry points for packages that need
// only a part: `@tessera/core/registry` (entry kinds and the registry), `@tessera/core/backend`
// (backend selection and the fused kernels' contracts), `@tessera/core/random` (the seed tree, the
// seeded generator, the config fingerprint), `@tessera/core/plots` (learning curves; Vega,
// Vega-Lite and resvg load only there).
//
// Each folder names what it offers in its own curated index.ts (named exports only); this file
// gathers those lists, so every public name is listed once, in its folder (tests/architecture.test.ts).
export * from './registry/index.ts';
export {
  formatLocation,
  isConfigError,
  configErrorsOf,
  throwIfAny,
  OVERRIDE_PREFIX,
  type ConfigErrorInit,
} from './errors.ts';
export * from './random/index.ts';
export * from './safety/index.ts';
export * from './config/index.ts';
export * from './schema/index.ts';
export * from './backend/index.ts';
export * from './graph/index.ts';
export * from './experiment/index.ts';
export * from './engine/index.ts';
export * from './tracking/index.ts';
export {
  PROJECT_CONFIG,
  pluginsSchema,
  pluginRefs,
  findProjectConfig,
  projectPluginRefs,
  experimentPluginRefs,
  loadExperimentPlugins,
} from './plugins/plugins.ts';
export * from './models/index.ts';
