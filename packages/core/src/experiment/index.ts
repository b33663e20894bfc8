export {
  loadValidatedExperiment,
  experimentDataShape,
  buildExperimentModel,
  createExperimentData,
  type Experiment,
  type ExperimentObject,
  type LoadExperimentOptions,
  type BuildExperimentModelOptions,
} from './experiment.ts';
