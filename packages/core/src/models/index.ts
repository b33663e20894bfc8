export * from './metadata.ts';
export * from './predictor.ts';
export * from './inputs.ts';
export * from './resolve.ts';
export * from './mlflow.ts';
export * from './output.ts';
export * from './evaluate.ts';
