import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.ts';
import { containedJoin, UnsafePathError } from '../safety/paths.ts';

/* ------------------------------------------------------------------------------------------ *
 * A directory in the TF.js LayersModel format (model.json + weights.bin), written and read    *
 * with node's fs: tfjs' own file:// handler lives in tfjs-node, which may be absent.          *
 * ------------------------------------------------------------------------------------------ */

export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/** What Tessera records next to the topology (model.json `userDefinedMetadata.tessera`). */
export interface ExportMetadata {
  [key: string]: unknown;
}

/**
 * A weight file a model.json names, inside `dir`: model.json may come from anywhere (a download),
 * so a path that leaves its directory (`../x`, `/etc/x`) is refused, never read nor written.
 */
function weightsFile(dir: string, path: string): string {
  try {
    return containedJoin(dir, ...path.split('/'));
  } catch (error) {
    if (!(error instanceof UnsafePathError)) throw error;
    throw new ConfigError({ message: `${join(dir, MODEL_FILE)}: weightsManifest names ${JSON.stringify(path)}, which is not a file in the model directory` });
  }
}

function concatenate(data: ArrayBuffer | ArrayBuffer[]): Uint8Array {
  const parts = Array.isArray(data) ? data : [data];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(new Uint8Array(part), offset);
    offset += part.byteLength;
  }
  return out;
}

/** Writes atomically (temp file then rename), so a crash never leaves half a model.json. */
function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, data);
  renameSync(temp, file);
}

/** An IOHandler that saves to and loads from a directory. */
export function directoryHandler(dir: string): tf.io.IOHandler {
  const root = resolve(dir);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      mkdirSync(root, { recursive: true });
      const weights = artifacts.weightData ? concatenate(artifacts.weightData as ArrayBuffer | ArrayBuffer[]) : new Uint8Array();
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology!,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: null,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      writeFileAtomic(join(root, WEIGHTS_FILE), weights);
      writeFileAtomic(join(root, MODEL_FILE), `${JSON.stringify(modelJson, null, 1)}\n`);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(modelJson.modelTopology).length,
          weightSpecsBytes: JSON.stringify(modelJson.weightsManifest).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const file = join(root, MODEL_FILE);
      const modelJson = JSON.parse(readFileSync(file, 'utf8')) as tf.io.ModelJSON;
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Uint8Array[] = [];
      for (const group of modelJson.weightsManifest ?? []) {
        weightSpecs.push(...group.weights);
        for (const path of group.paths) buffers.push(readFileSync(weightsFile(dirname(file), path)));
      }
      const weightData = concatenate(buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
      return {
        modelTopology: modelJson.modelTopology,
        format: modelJson.format,
        generatedBy: modelJson.generatedBy,
        convertedBy: modelJson.convertedBy,
        weightSpecs,
        weightData: weightData.buffer as ArrayBuffer,
        ...(modelJson.userDefinedMetadata ? { userDefinedMetadata: modelJson.userDefinedMetadata } : {}),
      };
    },
  };
}

/** Saves `model` under `dir` with Tessera's metadata (experiment, input, preprocessing state). */
export async function exportModel(model: tf.LayersModel, dir: string, metadata: object = {}): Promise<void> {
  model.setUserDefinedMetadata({ tessera: metadata });
  await model.save(directoryHandler(dir));
}

/**
 * Loads a model saved by `exportModel` (or any TF.js LayersModel directory). The primitives'
 * classes must be registered first: importing @tessera/models does it.
 */
export async function importModel(dir: string): Promise<{ model: tf.LayersModel; metadata: ExportMetadata }> {
  const model = await tf.loadLayersModel(directoryHandler(dir));
  const metadata = ((model.getUserDefinedMetadata() ?? {}) as { tessera?: ExportMetadata }).tessera ?? {};
  return { model, metadata };
}

/**
 * Copies a model directory (model.json and the weight files its manifest names) to `to`;
 * `rewrite` may change model.json's text on the way (exp export replaces a model's plugin list).
 */
export function copyModelDir(from: string, to: string, rewrite: (modelJson: string) => string = (text) => text): { files: string[]; bytes: number } {
  const text = readFileSync(join(from, MODEL_FILE), 'utf8');
  const modelJson = JSON.parse(text) as tf.io.ModelJSON;
  const paths = (modelJson.weightsManifest ?? []).flatMap((group) => group.paths);
  const files = paths.map((path) => ({ path, source: weightsFile(from, path), target: weightsFile(to, path) }));
  mkdirSync(to, { recursive: true });
  let bytes = 0;
  for (const { source, target } of files) {
    const data = readFileSync(source);
    bytes += data.byteLength;
    writeFileAtomic(target, data);
  }
  writeFileAtomic(join(to, MODEL_FILE), rewrite(text));
  return { files: [MODEL_FILE, ...paths], bytes };
}
