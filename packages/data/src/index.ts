import type { Registries } from '@tessera/core/registry';
import { transformEntries } from './augment/index.ts';
import { datasetEntries } from './datasets/entries.ts';

/** Registers the built-in datasets (cifar100, cifar10, mnist, fashion_mnist, image_folder, manifest, synthetic) and transforms. */
export function registerData(registries: Registries): Registries {
  for (const entry of datasetEntries) registries.datasets.register(entry);
  for (const entry of transformEntries) registries.transforms.register(entry);
  return registries;
}

export { datasetEntries, cifar100Entry, cifar10Entry, syntheticEntry, mnistEntry, fashionMnistEntry, cifarPlaces } from './datasets/entries.ts';
export { transformEntries } from './augment/index.ts';
export { CIFAR10, CIFAR100, loadCifar, findCifar, type CifarData, type CifarSource, type CifarFormat, type LabelMode, type LoadOptions } from './datasets/cifar.ts';
export { MNIST, FASHION_MNIST, loadIdx, parseIdx, type IdxFormat, type IdxData } from './datasets/mnist.ts';
export { imageFolderEntry, manifestEntry } from './datasets/images/entries.ts';
export { downloadFile, md5File } from './datasets/download.ts';
export { DataError } from './datasets/errors.ts';
export { decodeImage, probeImage, ImageDecodeError, IMAGE_EXTENSIONS, type DecodeOptions, type DecodedImage, type ImageErrorReason, type Interpolation, type ResizeFit } from './image/decode.ts';
export { createPipeline, restoreTransforms, transformStateKeys, type ConfiguredTransform, type PipelineSpec } from './pipeline.ts';
export { channelMoments, gatherBatch, type ImageSet, type SplitView } from './store.ts';
export { Normalize } from './augment/normalize.ts';
