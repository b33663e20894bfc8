import * as tf from '@tensorflow/tfjs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A checkpoint on disk: `state.json` (any JSON) and a tensor bundle (`tensors.json`, the
 * manifest, and `tensors.bin`, the raw little-endian data). It is written into a fresh
 * directory and renamed into place, so a kill at any moment leaves the previous checkpoint
 * intact.
 */
export interface TensorManifestEntry {
  key: string;
  shape: number[];
  dtype: tf.DataType;
  offset: number;
  byteLength: number;
}

async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Writes `state` and `tensors` as the checkpoint at `dir`, replacing any previous one atomically. */
export async function writeCheckpoint(dir: string, state: unknown, tensors: Map<string, tf.Tensor>): Promise<void> {
  const fresh = `${dir}.writing`;
  const old = `${dir}.old`;
  await rm(fresh, { recursive: true, force: true });
  await mkdir(fresh, { recursive: true });
  const manifest: TensorManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [key, tensor] of tensors) {
    const values = await tensor.data();
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    manifest.push({ key, shape: tensor.shape, dtype: tensor.dtype, offset, byteLength: bytes.byteLength });
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  const bin = new Uint8Array(offset);
  let at = 0;
  for (const chunk of chunks) {
    bin.set(chunk, at);
    at += chunk.byteLength;
  }
  await writeSynced(join(fresh, 'tensors.bin'), bin);
  await writeSynced(join(fresh, 'tensors.json'), JSON.stringify(manifest));
  await writeSynced(join(fresh, 'state.json'), JSON.stringify(state, null, 1));
  await rm(old, { recursive: true, force: true });
  if (await exists(dir)) await rename(dir, old);
  await rename(fresh, dir);
  await rm(old, { recursive: true, force: true });
}

export interface LoadedCheckpoint<S> {
  state: S;
  /** The caller owns these tensors. */
  tensors: Map<string, tf.Tensor>;
}

const TYPED_ARRAYS = { float32: Float32Array, int32: Int32Array, bool: Uint8Array } as const;

/** Reads the checkpoint at `dir` (or the one a crash left at `dir.old`); undefined when none. */
export async function readCheckpoint<S>(dir: string): Promise<LoadedCheckpoint<S> | undefined> {
  for (const candidate of [dir, `${dir}.old`]) {
    if (!(await exists(join(candidate, 'state.json')))) continue;
    const state = JSON.parse(await readFile(join(candidate, 'state.json'), 'utf8')) as S;
    const manifest = JSON.parse(await readFile(join(candidate, 'tensors.json'), 'utf8')) as TensorManifestEntry[];
    const bin = await readFile(join(candidate, 'tensors.bin'));
    const tensors = new Map<string, tf.Tensor>();
    for (const entry of manifest) {
      const Typed = TYPED_ARRAYS[entry.dtype as keyof typeof TYPED_ARRAYS];
      if (!Typed) throw new Error(`checkpoint ${candidate}: unsupported dtype ${entry.dtype} for ${entry.key}`);
      // Copy out of the file buffer: its byte offset need not be aligned for the typed array.
      const bytes = bin.subarray(entry.offset, entry.offset + entry.byteLength);
      const values = new Typed(new Uint8Array(bytes).buffer);
      tensors.set(entry.key, tf.tensor(values, entry.shape, entry.dtype));
    }
    return { state, tensors };
  }
  return undefined;
}
