export * from './registry/registry.ts';
export * from './registry/kinds.ts';
export * from './errors.ts';
export * from './config/index.ts';
export * from './schema/index.ts';
export * from './backend/index.ts';
export * from './graph/index.ts';
