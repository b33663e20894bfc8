export {
  selectBackend,
  describeBackends,
  BackendUnavailableError,
  BACKEND_REQUESTS,
  type BackendRequest,
  type BackendSelection,
  type BackendReport,
  type SkippedBackend,
  type SelectOptions,
} from './select.ts';
export {
  defaultLoaders,
  nativeLoader,
  wasmLoader,
  cpuLoader,
  SETUP_HINT,
  type BackendName,
  type BackendLoader,
  type BackendOptions,
  type BackendDetail,
  type LoadResult,
} from './loaders.ts';
export { registerFusedKernels } from './kernels.ts';
export {
  FUSED_KERNELS,
  hasFusedKernel,
  dropoutKeeps,
  DROPOUT_WEYL_STEP,
  dropoutKey,
  dropoutScale,
  dropoutPairBits,
  dropoutThreshold,
  referenceGeluExact,
  referenceLayerNorm,
  referenceLayerNormGrad,
  referenceDropout,
} from './fused.ts';
