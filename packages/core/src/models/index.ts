// What a program uses to work with a trained model (docs/models.md): its metadata, finding and
// loading it, predicting, evaluating, serving, and MLflow's LoggedModel and Model Registry.
export { MODEL_FORMAT, modelMetadata, checkModelMetadata, configDigest, recordFormat } from './metadata.ts';
export type { ModelMetadata, ModelMetadataInit, ModelData, ModelWhich, RecordFormat } from './metadata.ts';
export { isDownloadedModel, modelCacheDir, resolveModel, runModelDir, RUN_MODEL_PATHS, type ResolvedModel, type ResolveModelOptions, type WhichModel } from './resolve.ts';
export { Predictor, loadModelDir, softmaxRows, type TopK } from './predictor.ts';
export { loadModelPlugins, modelPluginRefs, withRecordedPlugins } from './model-plugins.ts';
export { concatFloat32, expandInputs, readInputBatches, readInputs, readRecords, type ImageDecoder, type NamedImages, type ReadInputsOptions } from './inputs.ts';
export { predictionsOf, formatPredictionTable, predictionsJson, predictionsCsv, npy, type Prediction } from './output.ts';
export {
  evaluatePredictor,
  evaluationArtifacts,
  evaluationMetricPrefix,
  formatEvaluation,
  recordEvaluation,
  rawDataset,
  runConfigDir,
  confusionMatrix,
  classReport,
  mostConfused,
  type Evaluation,
  type ClassReport,
  type ConfusedPair,
  type RecordEvaluationOptions,
} from './evaluate.ts';
export { DynamicBatcher, QueueFullError, type BatcherOptions } from './batcher.ts';
export { startModelServer, type ServeOptions, type ModelServer } from './serve.ts';
export {
  ensureRunLoggedModels,
  runModelsToLog,
  LOGGED_MODEL_TAGS,
  LOGGED_MODEL_NAMES,
  type EnsureLoggedModelsOptions,
  type RunLoggedModels,
  logLoggedModel,
  registerRunModel,
  fetchMlflowModel,
  mlmodelFile,
  modelDirFiles,
  LOGGED_MODEL_TAG,
  type LogLoggedModelOptions,
  type RegisterOptions,
  type Registration,
} from './mlflow.ts';
