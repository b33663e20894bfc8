export * from './tracker.ts';
export * from './local-store.ts';
export * from './provenance.ts';
