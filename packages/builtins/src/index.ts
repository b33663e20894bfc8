export { builtinRegistries } from './registries.ts';
