export * from './registry/registry.ts';
export * from './registry/kinds.ts';
export * from './backend/index.ts';
