// The image-folder half of `pnpm bench data`: Tessera's image_folder against tf.data +
// keras.utils.image_dataset_from_directory, on the same 50,000 PNGs (CIFAR-100's training set
// written as one PNG per image), in the same run. Each measurement runs in its own process
// (bench/lib/image-folder-phase.ts, bench/keras_data.py) so its peak RSS is its own.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBenchVenv } from './venv.ts';

const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));

type Result = Record<string, number | string>;

function tessera(phase: string, args: string[], env: Record<string, string> = {}): Result {
  const child = spawnSync(process.execPath, ['--import', 'tsx', join(benchDir, 'lib', 'image-folder-phase.ts'), phase, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 16 * 2 ** 20,
  });
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (child.status !== 0 || !line) throw new Error(`tessera ${phase} failed: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  process.stdout.write(child.stdout.split('\n').filter((l) => !l.startsWith('RESULT ')).join('\n'));
  return JSON.parse(line.slice('RESULT '.length)) as Result;
}

function keras(python: string, phase: string, dir: string, threads: number): Result {
  const child = spawnSync(python, [join(benchDir, 'keras_data.py'), '--phase', phase, '--dir', dir, '--threads', String(threads)], {
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
    maxBuffer: 16 * 2 ** 20,
  });
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (child.status !== 0 || !line) throw new Error(`keras ${phase} failed: ${child.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(line.slice('RESULT '.length)) as Result;
}

export interface ImageFolderBenchOptions {
  cifarDir: string;
  /** Where the PNG tree and the decoded cache go (kept between runs; the cache is rebuilt each run). */
  root: string;
  batch: number;
  /** Training images/s of the reference step (bench train), for the "5x" target; optional. */
  stepImagesPerSecond?: number;
}

/** Runs the comparison and returns the markdown section (rows of images/s and peak RSS). */
export async function benchImageFolder(options: ImageFolderBenchOptions): Promise<string> {
  const { root } = options;
  const cores = availableParallelism();
  console.log(`image folder: generating the PNGs under ${root} (once)`);
  tessera('generate', [root, options.cifarDir]);
  const all = join(root, 'all');
  const subset = join(root, 'subset');
  const cache = join(root, 'cache');
  rmSync(cache, { recursive: true, force: true });

  const rows: { what: string; tessera?: Result; keras?: Result; key: string }[] = [];
  // One core: one decode thread (libuv's pool of 1) beside the JavaScript thread, as tf.data's
  // private pool of 1 beside Python's thread.
  console.log('image folder: tessera first pass, one decode thread (10,000 images)');
  const t1 = tessera('decode', [subset, '4'], { UV_THREADPOOL_SIZE: '1' });
  console.log(`image folder: tessera first pass, all ${cores} cores, into the shard cache (50,000 images)`);
  const tAll = tessera('decode', [all, String(2 * cores), cache], { UV_THREADPOOL_SIZE: String(Math.max(4, cores)) });
  console.log('image folder: tessera cached epoch (a later run: open the cache, one epoch of shuffled training batches)');
  const tCached = tessera('cached', [all, cache, String(options.batch)]);
  console.log('image folder: tessera cached epoch with random_flip in the batch workers');
  const tFlip = tessera('cached', [all, cache, String(options.batch), 'flip']);

  const venv = ensureBenchVenv();
  let k1: Result | undefined;
  let kAll: Result | undefined;
  let kCached: Result | undefined;
  let kerasError: string | undefined;
  if ('error' in venv) kerasError = venv.error;
  else {
    try {
      console.log('image folder: keras first pass, 1 thread (10,000 images)');
      k1 = keras(venv.python, 'decode', subset, 1);
      console.log('image folder: keras first pass, all cores (AUTOTUNE)');
      kAll = keras(venv.python, 'decode', all, 0);
      console.log('image folder: keras cached epoch (.cache(), second epoch)');
      kCached = keras(venv.python, 'cached', all, 0);
    } catch (e) {
      kerasError = (e as Error).message;
    }
  }
  rows.push({ what: 'first pass, 1 core (one decode thread; images/s per core)', tessera: t1, ...(k1 ? { keras: k1 } : {}), key: 'imagesPerSecond' });
  rows.push({ what: `first pass, all ${cores} cores (decode${' + write the shard cache'})`, tessera: tAll, ...(kAll ? { keras: kAll } : {}), key: 'imagesPerSecond' });
  rows.push({ what: 'cached epoch (later epochs and runs)', tessera: tCached, ...(kCached ? { keras: kCached } : {}), key: 'imagesPerSecond' });
  rows.push({ what: 'cached epoch + random_flip (Tessera: in the batch workers)', tessera: tFlip, key: 'imagesPerSecond' });

  const fmt = (r: Result | undefined, key: string) => (r ? `${Math.round(Number(r[key]))}` : 'n/a');
  const ratio = (a: Result | undefined, b: Result | undefined, key: string) => (a && b ? `${(Number(a[key]) / Number(b[key])).toFixed(2)}x` : 'n/a');
  const lines = [
    '| measurement | Tessera images/s | tf.data images/s | Tessera / tf.data | Tessera peak RSS MiB | tf.data peak RSS MiB |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${fmt(r.tessera, r.key)} | ${fmt(r.keras, r.key)} | ${ratio(r.tessera, r.keras, r.key)} | ${fmt(r.tessera, 'peakRssMiB')} | ${fmt(r.keras, 'peakRssMiB')} |`),
    '',
    `Tessera's cached run opened the shard cache in ${Number(tCached.openSeconds).toFixed(2)} s (50,000 images listed, stat-ed and digested, shards read), then made ${tCached.images} training images (shuffled, gathered to float32 NHWC tensors by the batch workers) in ${Number(tCached.epochSeconds).toFixed(1)} s.`,
    "tf.data's cached epoch replays the batches `.cache()` kept in memory (no shuffle after the cache): an upper bound, not the same work.",
    ...(options.stepImagesPerSecond
      ? [`Target "cached epochs >= 5x the training step": ${Math.round(Number(tCached.imagesPerSecond))} images/s = ${(Number(tCached.imagesPerSecond) / options.stepImagesPerSecond).toFixed(1)}x (${(Number(tFlip.imagesPerSecond) / options.stepImagesPerSecond).toFixed(1)}x with random_flip) the Mixer's ${options.stepImagesPerSecond} images/s (native backend, bench train).`]
      : []),
    ...(kAll?.versions ? [`tf.data side: ${kAll.versions}, image_dataset_from_directory(image_size=(32, 32), batch_size=${options.batch}, shuffle=True); 1 core = TF_NUM_INTEROP/INTRAOP_THREADS=1 and a private thread pool of 1.`] : []),
    ...(kerasError ? [`tf.data side not measured: ${kerasError}`] : []),
  ];
  return lines.join('\n');
}
