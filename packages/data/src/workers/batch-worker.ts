/**
 * A batch worker: gathers a batch from shared uint8 memory and applies the transforms with
 * TF.js' WebAssembly backend (one thread; the plain-JS CPU backend is ~30x slower on the
 * broadcasting arithmetic of flips and blends), off the training thread. Every worker runs the
 * same code with the same per-batch seeds, so the batches do not depend on which worker made
 * them or how many there are.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '@tessera/core/backend';
import { createRegistries, loadPlugins, type Transform } from '@tessera/core/registry';
import { registerData } from '../index.ts';
import { restoreTransforms, runTransforms } from '../pipeline.ts';
import { deriveSeed } from '@tessera/core/random';
import { gatherBatch, range, type ImageSet } from '../store.ts';
import type { BatchJob, BatchResult, FromWorker, RegisterMessage, SharedSet, ToWorker } from './protocol.ts';

// wasm, else the CPU backend (the same kernels everywhere the workers run: batches match).
await selectBackend('wasm', () => {}, { threads: 1 }).catch(() => tf.setBackend('cpu'));
const registries = registerData(createRegistries());
interface Pipeline {
  sets: SharedSet[];
  transforms: Transform[];
  numClasses: number;
}
/** Each registered pipeline, ready once its plugins are loaded and its transforms rebuilt. */
const pipelines = new Map<number, Promise<Pipeline>>();

/** A pipeline this worker could not set up: each of its batches says so (the training thread then makes them). */
class SetupError extends Error {}

async function registerPipeline(message: RegisterMessage): Promise<Pipeline> {
  try {
    // The plugins whose transforms it uses, through the same loader as the training thread's.
    await loadPlugins(registries, message.plugins.map((path, i) => ({ path, baseDir: '/', yamlPath: ['plugins', i] })));
    return { sets: message.sets, transforms: restoreTransforms(message.specs, message.state, registries), numClasses: message.numClasses };
  } catch (error) {
    throw new SetupError((error as Error)?.message ?? String(error), { cause: error });
  }
}

function owned(data: Float32Array): Float32Array {
  // Transfer only a buffer that holds exactly this array.
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer ? data : data.slice();
}

async function runJob(job: BatchJob): Promise<BatchResult> {
  const pipeline = await pipelines.get(job.pipelineId);
  if (!pipeline) throw new Error(`batch for unknown pipeline ${job.pipelineId}`);
  const set = (job.inline ?? pipeline.sets[job.set]!) as ImageSet;
  const n = job.indices.length;
  const host = gatherBatch({ set, indices: job.indices }, range(0, n), 0, n);
  const shape: [number, number, number, number] = [n, set.height, set.width, set.channels];
  const out = tf.tidy(() => {
    const x = tf.tensor4d(host.pixels, shape);
    const y = tf.tensor1d(host.labels, 'int32');
    return runTransforms(pipeline.transforms, x, y, job.training, pipeline.numClasses, (i) => deriveSeed(job.seed, job.epoch, job.batchIndex, i));
  });
  const pixels = owned(out.images.dataSync() as Float32Array);
  const result: BatchResult = { kind: 'batch', jobId: job.jobId, pixels, shape: out.images.shape as [number, number, number, number], labels: host.labels };
  if (out.soft) result.soft = owned(out.soft.dataSync() as Float32Array);
  tf.dispose([out.images, out.soft]);
  return result;
}

parentPort!.on('message', (message: ToWorker) => {
  if (message.kind === 'register') {
    const ready = registerPipeline(message);
    ready.catch(() => {}); // reported by each of its batches
    pipelines.set(message.pipelineId, ready);
  } else if (message.kind === 'forget') {
    pipelines.delete(message.pipelineId);
  } else {
    void answer(message);
  }
});

async function answer(job: BatchJob): Promise<void> {
  let reply: FromWorker;
  try {
    reply = await runJob(job);
  } catch (e) {
    reply = {
      kind: 'error',
      jobId: job.jobId,
      message: (e as Error).message,
      ...((e as Error).stack ? { stack: (e as Error).stack } : {}),
      ...(e instanceof SetupError ? { setup: true as const } : {}),
    };
  }
  const transfer = reply.kind === 'batch' ? [reply.pixels.buffer, reply.labels.buffer, ...(reply.soft ? [reply.soft.buffer] : [])] : [];
  parentPort!.postMessage(reply, transfer as ArrayBuffer[]);
}
parentPort!.postMessage({ kind: 'ready' } satisfies FromWorker);
