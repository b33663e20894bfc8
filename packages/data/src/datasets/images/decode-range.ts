/**
 * The first pass's unit of work: a contiguous range of an image list decoded into fixed slots of
 * a planar uint8 buffer. The same function runs on the calling thread (one decode thread) and in
 * the decode workers (workers/decode-worker.ts, writing into a SharedArrayBuffer), so the bytes
 * of every slot are the same whoever decodes it.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { decodeImagePlanar, ImageDecodeError, unreadableImage, type ImageErrorReason, type Interpolation, type ResizeFit } from '../../image/decode.ts';

export interface DecodeSettings {
  height: number;
  width: number;
  channels: 1 | 3 | 4;
  fit: ResizeFit;
  interpolation: Interpolation;
}

export interface DecodeRange {
  /** The range's files, in list order. */
  files: string[];
  /** The list index of `files[0]` (failures are reported by list index). */
  first: number;
  /** The slot of `files[0]` in the target: file k goes to slot `slot + k` (`height * width * channels` bytes each). */
  slot: number;
  settings: DecodeSettings;
  /** Images in flight at once; only decodes that go through sharp (libuv's thread pool) overlap. */
  concurrency: number;
}

/** An image of the range that could not be decoded (its slot is left as it was). */
export interface RangeFailure {
  index: number;
  file: string;
  reason: ImageErrorReason;
  problem: string;
  message: string;
}

/** Bytes read per file at once; larger files are read whole. */
const SCRATCH_BYTES = 64 << 10;

/**
 * The file's bytes, read synchronously into `scratch` (valid until the next read; larger files
 * get their own buffer). For the small files of an image folder one blocking read is ~5-10 us,
 * where an async read costs four thread-pool round trips (~0.8 ms here), and reusing one buffer
 * spares readFileSync's fstat and an allocation per image. An unreadable file becomes the
 * decoder's typed error.
 */
function readImageFile(file: string, scratch: Buffer): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const n = readSync(fd, scratch, 0, scratch.length, 0);
    return n < scratch.length ? scratch.subarray(0, n) : readFileSync(fd);
  } catch (cause) {
    throw unreadableImage(file, cause);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Decodes every file of the range into its slot of `target`; returns the undecodable ones in
 * list order. Any other error (a bug, not a bad image) is thrown.
 */
export async function decodeRange(range: DecodeRange, target: Uint8Array, onDecoded: () => void): Promise<RangeFailure[]> {
  const { files, first, slot, settings } = range;
  const options = { ...settings, name: '' };
  const imageBytes = settings.height * settings.width * settings.channels;
  const failures: RangeFailure[] = [];
  // Shared by the loops below: decodeImagePlanar reads it synchronously (and copies what it keeps).
  const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  let next = 0;
  const decodeNext = async () => {
    while (next < files.length) {
      const k = next++;
      const file = files[k]!;
      try {
        // A PNG that needs no work decodes synchronously: no promise, no await.
        options.name = file;
        const pending = decodeImagePlanar(readImageFile(file, scratch), options, target, (slot + k) * imageBytes);
        if (pending) await pending;
      } catch (e) {
        if (!(e instanceof ImageDecodeError)) throw e;
        failures.push({ index: first + k, file, reason: e.reason, problem: e.problem, message: e.message });
      }
      onDecoded();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(range.concurrency, files.length)) }, decodeNext));
  return failures.sort((a, b) => a.index - b.index);
}
