/**
 * The first pass over a list of image files decodes them (sharp, on libuv's native thread pool:
 * several images at once, off the JavaScript thread) into uint8 shards in the cache; later
 * epochs and later runs read the shards and never decode again.
 *
 * Layout: `<cacheDir>/images/<digest>/` holds `index.json` plus `shard-NNNNN.u8` files of
 * planar (CHW) images, the layout `gatherBatch` reads, and `labels.u16`. The digest covers the
 * file list (paths, sizes, mtimes, labels) and every decode setting, so an edited dataset or a
 * new image_size gets a new entry. The entry is written in a temporary folder and renamed into
 * place at the end: a killed process leaves only a `.tmp-` folder, which is never read and is
 * removed by the next writer once its process is gone.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage, ImageDecodeError, type Interpolation, type ResizeFit } from '../../image/decode.ts';
import type { ImageSet } from '../../store.ts';
import type { FileList } from './scan.ts';
import type { ShardIndex } from './stream.ts';

/** Bump when the shard format or the decoder's output changes. */
const CACHE_VERSION = 1;
/** Bytes per shard file: large enough for fast sequential reads, small enough to stream. */
const SHARD_BYTES = 64 << 20;

export interface DecodeSettings {
  height: number;
  width: number;
  channels: 1 | 3 | 4;
  fit: ResizeFit;
  interpolation: Interpolation;
}

export interface BadImage {
  file: string;
  problem: string;
}

export interface DecodeListOptions {
  /** Where decoded shards live; none: decode into memory only. */
  cacheDir?: string;
  /** 'skip': warn once per file and leave it out; 'error': throw the first failure. */
  onBadImage: 'skip' | 'error';
  /** Images decoded at once (default: twice the number of cores, so the decode threads never wait on the JavaScript thread). */
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

/**
 * The file's bytes, read synchronously: for the small files of an image folder one blocking
 * read is ~20 us, where an async read costs four thread-pool round trips (~0.8 ms here).
 * An unreadable file becomes the decoder's typed error.
 */
function readImageFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new ImageDecodeError(file, 'unreadable', `cannot read image: ${code === 'ENOENT' ? 'file not found' : (cause as Error).message}`, { cause });
  }
}

/** HWC (what the decoder returns) into CHW at `target` (what ImageSet stores). */
function toPlanar(hwc: Uint8Array, target: Uint8Array, at: number, plane: number, channels: number): void {
  for (let c = 0; c < channels; c++) {
    const base = at + c * plane;
    for (let p = 0, s = c; p < plane; p++, s += channels) target[base + p] = hwc[s]!;
  }
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
  const plane = height * width;
  const imageBytes = plane * channels;
  const total = list.files.length;
  const perShard = Math.max(1, Math.floor((options.shardBytes ?? SHARD_BYTES) / imageBytes));
  const concurrency = Math.max(1, options.concurrency ?? 2 * availableParallelism());
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
  const keep = options.inMemory !== false || !temp;
  const bytes = new Uint8Array((keep ? total : Math.min(total, perShard)) * imageBytes);
  const labels = new Uint16Array(total);
  const skipped: BadImage[] = [];
  const shards: CacheIndex['shards'] = [];
  let kept = 0;
  let done = 0;
  try {
    for (let start = 0; start < total; start += perShard) {
      const end = Math.min(total, start + perShard);
      const ok = new Array<boolean>(end - start).fill(false);
      const decoded: (Uint8Array | undefined)[] = new Array(end - start);
      let next = start;
      const worker = async () => {
        while (next < end) {
          const i = next++;
          try {
            decoded[i - start] = (await decodeImage(readImageFile(list.files[i]!), { ...settings, name: list.files[i]! })).data;
            ok[i - start] = true;
          } catch (e) {
            if (!(e instanceof ImageDecodeError) || options.onBadImage === 'error') throw e;
            skipped.push({ file: list.files[i]!, problem: e.problem });
            options.log(`warning: skipping ${e.message}`);
          }
          done++;
          progress(done, total, false);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, end - start) }, worker));
      // Placed in list order, so the result does not depend on which decode finished first.
      const shardStart = kept;
      const base = keep ? 0 : shardStart; // position of this shard's first image in `bytes`
      for (let i = start; i < end; i++) {
        if (!ok[i - start]) continue;
        toPlanar(decoded[i - start]!, bytes, (kept - base) * imageBytes, plane, channels);
        labels[kept] = list.labels[i]!;
        kept++;
      }
      if (temp && kept > shardStart) {
        const file = `shard-${String(shards.length).padStart(5, '0')}.u8`;
        await writeFile(join(temp, file), bytes.subarray((shardStart - base) * imageBytes, (kept - base) * imageBytes));
        shards.push({ file, count: kept - shardStart });
      }
    }
    progress(done, total, true);
  } catch (e) {
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
