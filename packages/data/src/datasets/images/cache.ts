/**
 * The first pass over a list of image files decodes them into uint8 shards in the cache, on
 * every core (the calling thread and decode workers take contiguous ranges of the list from one
 * queue and decode each image into its own slot of shared memory, so the shards do not depend
 * on the number of threads); later epochs and later runs read the shards and never decode again.
 *
 * Layout: `<cacheDir>/images/<digest>/` holds `index.json` plus `shard-NNNNN.u8` files of
 * planar (CHW) images, the layout `gatherBatch` reads, and `labels.u16`. The digest covers the
 * file list (paths, sizes, mtimes, labels) and every decode setting, so an edited dataset or a
 * new image_size gets a new entry. The entry is written in a temporary folder and renamed into
 * place at the end: a killed process leaves only a `.tmp-` folder, which is never read and is
 * removed by the next writer once its process is gone.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { ImageDecodeError } from '../../image/decode.ts';
import type { ImageSet } from '../../store.ts';
import { decodeOnWorkers } from '../../workers/decode-pool.ts';
import { decodeRange, type DecodeRange, type DecodeSettings, type RangeFailure } from './decode-range.ts';
import type { FileList } from './scan.ts';
import type { ShardIndex } from './stream.ts';

/** Bump when the shard format or the decoder's output changes. */
const CACHE_VERSION = 1;
/** Bytes per shard file: large enough for fast sequential reads, small enough to stream. */
const SHARD_BYTES = 64 << 20;

export type { DecodeSettings } from './decode-range.ts';

export interface BadImage {
  file: string;
  problem: string;
}

export interface DecodeListOptions {
  /** Where decoded shards live; none: decode into memory only. */
  cacheDir?: string;
  /** 'skip': warn once per file and leave it out; 'error': throw the first failure. */
  onBadImage: 'skip' | 'error';
  /**
   * Threads that decode: the calling thread and `threads - 1` decode workers. Default: one per
   * core, or 1 (the calling thread alone) for a list too small to repay starting workers.
   */
  threads?: number;
  /** Images in flight per decode thread; only decodes that go through sharp (JPEG, resizing) overlap. Default 4. */
  concurrency?: number;
  log: (message: string) => void;
  /** Progress output; default: a bar on a terminal's stderr, else a log line every 10 s. */
  progress?: (done: number, total: number, final: boolean) => void;
  /** The label shown in progress and messages, e.g. "train". */
  name: string;
  /**
   * false: do not hold the decoded images in memory (a dataset larger than memory): decode
   * shard by shard into the cache and return its `shards` to stream from. Needs `cacheDir`.
   */
  inMemory?: boolean;
  /** Bytes per shard file (default 64 MiB; tests use small shards). */
  shardBytes?: number;
}

export interface DecodedImages {
  /** The images in memory (absent when streaming: `inMemory: false`). */
  set?: ImageSet;
  /** The cache entry's shards (absent without a cache). */
  shards?: ShardIndex;
  /** Images kept (decodable). */
  count: number;
  /** Images left out because they could not be decoded (in the first pass). */
  skipped: BadImage[];
  /** The cache entry's digest (also the data fingerprint). */
  digest: string;
  fromCache: boolean;
}

interface CacheIndex {
  version: number;
  count: number;
  height: number;
  width: number;
  channels: number;
  shards: { file: string; count: number }[];
  skipped: BadImage[];
}

/** sha1 over the decode settings and every file's path, size, mtime and label. */
export function listDigest(list: FileList, settings: DecodeSettings): string {
  const hash = createHash('sha1').update(JSON.stringify([CACHE_VERSION, settings]));
  list.files.forEach((file, i) => {
    let stamp = 'missing';
    try {
      const s = statSync(file);
      stamp = `${s.size}:${s.mtimeMs}`;
    } catch {
      // A file that vanished after the scan: its decode fails and reports it.
    }
    hash.update(`${file}\0${stamp}\0${list.labels[i]}\n`);
  });
  return hash.digest('hex').slice(0, 20);
}

/** Lists shorter than this decode on the calling thread by default: starting workers costs more. */
const MIN_IMAGES_FOR_WORKERS = 4096;

/** Images per range handed to a decode thread: small enough to balance and to keep the calling thread responsive. */
const RANGE_IMAGES = 256;

/**
 * Decodes images [start, end) of the list into slots `i - slotBase` of `bytes` on `threads`
 * threads: the calling thread and `threads - 1` decode workers take ranges from one queue, so
 * the workers' start-up overlaps the calling thread's decoding. Returns the failures in list order.
 */
async function decodeSlots(list: FileList, start: number, end: number, slotBase: number, bytes: Uint8Array, threads: number, settings: DecodeSettings, concurrency: number, onDecoded: (count: number) => void): Promise<RangeFailure[]> {
  let first = start;
  const take = (): DecodeRange | undefined => {
    if (first >= end) return undefined;
    const last = Math.min(end, first + RANGE_IMAGES);
    const range = { files: list.files.slice(first, last), first, slot: first - slotBase, settings, concurrency };
    first = last;
    return range;
  };
  const onWorkers = threads > 1 ? decodeOnWorkers(take, bytes.buffer as SharedArrayBuffer, threads - 1, onDecoded) : Promise.resolve([]);
  // A failed worker: hand out nothing more (the error is thrown below).
  onWorkers.catch(() => (first = end));
  const failures: RangeFailure[] = [];
  try {
    for (let range = take(); range; range = take()) {
      failures.push(...(await decodeRange(range, bytes, () => onDecoded(1))));
      // Lets the workers' messages in between ranges (a range that needs no sharp decode never yields).
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (e) {
    // Never leave workers writing into the slots after an error: stop handing out ranges and wait for them.
    first = end;
    await onWorkers.catch(() => undefined);
    throw e;
  }
  failures.push(...(await onWorkers));
  return failures.sort((a, b) => a.index - b.index);
}

function defaultProgress(name: string, log: (m: string) => void): (done: number, total: number, final: boolean) => void {
  const tty = process.stderr.isTTY === true && process.env.CI !== 'true';
  const started = performance.now();
  let last = started;
  return (done, total, final) => {
    const now = performance.now();
    if (!final && now - last < (tty ? 200 : 10_000)) return;
    last = now;
    const seconds = (now - started) / 1000;
    const rate = done / Math.max(seconds, 1e-3);
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    const width = 30;
    const filled = Math.round((width * done) / Math.max(total, 1));
    const text = `decoding ${name} images ${done}/${total} [${'='.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(rate)} img/s${final ? `, ${seconds.toFixed(1)} s` : `, ETA ${Number.isFinite(eta) ? Math.ceil(eta) : '?'} s`}`;
    if (tty) process.stderr.write(`\r${text}${final ? '\n' : ''}`);
    else log(text);
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary entries whose writer is gone (killed mid-write). */
function removeStaleTemps(root: string): void {
  if (!existsSync(root)) return;
  for (const name of readdirSync(root)) {
    const match = /\.tmp-(\d+)-/.exec(name);
    if (match && !pidAlive(Number(match[1]))) rmSync(join(root, name), { recursive: true, force: true });
  }
}

async function readEntry(dir: string, settings: DecodeSettings, inMemory: boolean): Promise<Omit<DecodedImages, 'digest' | 'fromCache'> | undefined> {
  const indexFile = join(dir, 'index.json');
  if (!existsSync(indexFile)) return undefined;
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as CacheIndex;
  if (index.version !== CACHE_VERSION || index.height !== settings.height || index.width !== settings.width || index.channels !== settings.channels) {
    return undefined;
  }
  const imageBytes = index.height * index.width * index.channels;
  const labelBytes = await readFile(join(dir, 'labels.u16'));
  if (labelBytes.length !== index.count * 2) throw new Error(`${join(dir, 'labels.u16')} has ${labelBytes.length} bytes, expected ${index.count * 2}`);
  const labels = new Uint16Array(index.count);
  for (let i = 0; i < index.count; i++) labels[i] = labelBytes.readUInt16LE(i * 2);
  const shards: ShardIndex = { dir, shards: index.shards, height: index.height, width: index.width, channels: index.channels, labels };
  if (!inMemory) {
    for (const shard of index.shards) {
      const size = statSync(join(dir, shard.file)).size;
      if (size !== shard.count * imageBytes) throw new Error(`${join(dir, shard.file)} has ${size} bytes, expected ${shard.count * imageBytes}`);
    }
    return { shards, count: index.count, skipped: index.skipped };
  }
  const bytes = new Uint8Array(index.count * imageBytes);
  let at = 0;
  for (const shard of index.shards) {
    const data = await readFile(join(dir, shard.file));
    if (data.length !== shard.count * imageBytes) throw new Error(`${join(dir, shard.file)} has ${data.length} bytes, expected ${shard.count * imageBytes}`);
    bytes.set(data, at);
    at += data.length;
  }
  return {
    set: { bytes, count: index.count, height: index.height, width: index.width, channels: index.channels, offset: 0, stride: imageBytes, labels },
    shards,
    count: index.count,
    skipped: index.skipped,
  };
}

/**
 * Decodes every file of `list` to `settings` (through the cache when `cacheDir` is set) into a
 * planar uint8 ImageSet, in list order whatever the concurrency. Undecodable files are skipped
 * with one warning each (`onBadImage: 'skip'`) or thrown as ImageDecodeError ('error').
 */
export async function decodeFileList(list: FileList, settings: DecodeSettings, options: DecodeListOptions): Promise<DecodedImages> {
  const digest = listDigest(list, settings);
  const root = options.cacheDir ? join(options.cacheDir, 'images') : undefined;
  const entryDir = root ? join(root, digest) : undefined;
  if (entryDir) {
    try {
      const cached = await readEntry(entryDir, settings, options.inMemory !== false);
      if (cached) {
        if (cached.skipped.length > 0 && options.onBadImage === 'error') {
          const first = cached.skipped[0]!;
          throw new ImageDecodeError(first.file, 'corrupt', first.problem);
        }
        return { ...cached, digest, fromCache: true };
      }
    } catch (e) {
      if (e instanceof ImageDecodeError) throw e;
      options.log(`ignoring a damaged cache entry ${entryDir} (${(e as Error).message}); decoding again`);
      await rm(entryDir, { recursive: true, force: true });
    }
  }

  const { height, width, channels } = settings;
  const imageBytes = height * width * channels;
  const total = list.files.length;
  const perShard = Math.max(1, Math.floor((options.shardBytes ?? SHARD_BYTES) / imageBytes));
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const threads = Math.max(1, options.threads ?? (total >= MIN_IMAGES_FOR_WORKERS ? availableParallelism() : 1));
  // Parallelism comes from decoding many images at once; one libvips thread per image avoids
  // oversubscribing the cores with per-image threads that small images cannot use.
  const previousConcurrency = sharp.concurrency();
  sharp.concurrency(1);
  const progress = options.progress ?? defaultProgress(options.name, options.log);
  const temp = root ? join(root, `${digest}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`) : undefined;
  if (root) {
    removeStaleTemps(root);
    await mkdir(temp!, { recursive: true });
  }

  // Streaming keeps one shard's worth of pixels at a time; otherwise the whole set stays in memory.
  // Image i is decoded into slot i - slotBase; shared memory when workers write it.
  const keep = options.inMemory !== false || !temp;
  const slots = (keep ? total : Math.min(total, perShard)) * imageBytes;
  const bytes = new Uint8Array(threads > 1 ? new SharedArrayBuffer(slots) : new ArrayBuffer(slots));
  const labels = new Uint16Array(total);
  const skipped: BadImage[] = [];
  const shards: CacheIndex['shards'] = [];
  // In-memory shards are written while the next ones decode; streamed ones reuse `bytes`, so wait.
  const writes: Promise<void>[] = [];
  let kept = 0;
  let done = 0;
  const onDecoded = (count: number) => {
    done += count;
    progress(done, total, false);
  };
  try {
    for (let start = 0; start < total; start += perShard) {
      const end = Math.min(total, start + perShard);
      const slotBase = keep ? 0 : start;
      const failures = await decodeSlots(list, start, end, slotBase, bytes, threads, settings, concurrency, onDecoded);
      if (failures.length > 0 && options.onBadImage === 'error') {
        const first = failures[0]!;
        throw new ImageDecodeError(first.file, first.reason, first.problem);
      }
      for (const failure of failures) {
        skipped.push({ file: failure.file, problem: failure.problem });
        options.log(`warning: skipping ${failure.message}`);
      }
      // Kept images move down over the skipped ones' slots, in list order: the result does not
      // depend on which thread decoded what.
      const shardStart = kept;
      const base = keep ? 0 : shardStart; // position of this shard's first image in `bytes`
      let failed = 0;
      for (let i = start; i < end; i++) {
        if (failed < failures.length && failures[failed]!.index === i) {
          failed++;
          continue;
        }
        const from = (i - slotBase) * imageBytes;
        const to = (kept - base) * imageBytes;
        if (from !== to) bytes.copyWithin(to, from, from + imageBytes);
        labels[kept] = list.labels[i]!;
        kept++;
      }
      if (temp && kept > shardStart) {
        const file = `shard-${String(shards.length).padStart(5, '0')}.u8`;
        const write = writeFile(join(temp, file), bytes.subarray((shardStart - base) * imageBytes, (kept - base) * imageBytes));
        if (keep) {
          // Awaited after the last shard; a failure must not count as unhandled before that.
          write.catch(() => undefined);
          writes.push(write);
        } else await write;
        shards.push({ file, count: kept - shardStart });
      }
    }
    await Promise.all(writes);
    progress(done, total, true);
  } catch (e) {
    await Promise.allSettled(writes);
    if (temp) await rm(temp, { recursive: true, force: true });
    throw e;
  } finally {
    sharp.concurrency(previousConcurrency);
  }
  skipped.sort((a, b) => (a.file < b.file ? -1 : 1));

  if (temp && entryDir) {
    try {
      const labelBytes = Buffer.alloc(kept * 2);
      for (let i = 0; i < kept; i++) labelBytes.writeUInt16LE(labels[i]!, i * 2);
      await writeFile(join(temp, 'labels.u16'), labelBytes);
      const index: CacheIndex = { version: CACHE_VERSION, count: kept, height, width, channels, shards, skipped };
      // index.json last, then one rename: the entry appears complete or not at all.
      await writeFile(join(temp, 'index.json'), JSON.stringify(index));
      if (existsSync(entryDir)) await rm(temp, { recursive: true, force: true }); // another process won the race
      else await rename(temp, entryDir);
    } catch (e) {
      options.log(`could not write the decoded cache ${entryDir}: ${(e as Error).message}`);
      await rm(temp, { recursive: true, force: true });
    }
  }
  const written = entryDir && existsSync(join(entryDir, 'index.json'));
  const shardIndex: ShardIndex | undefined = written ? { dir: entryDir, shards, height, width, channels, labels: labels.slice(0, kept) } : undefined;
  if (!keep && !shardIndex) throw new Error(`streaming needs the decoded cache, which could not be written (${entryDir})`);
  return {
    ...(keep ? { set: { bytes: bytes.subarray(0, kept * imageBytes), count: kept, height, width, channels, offset: 0, stride: imageBytes, labels: labels.subarray(0, kept) } } : {}),
    ...(shardIndex ? { shards: shardIndex } : {}),
    count: kept,
    skipped,
    digest,
    fromCache: false,
  };
}
