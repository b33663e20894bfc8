/**
 * Streaming a decoded cache entry that is larger than memory, as tf.data's
 * `shuffle(buffer)` does: in training the shards are read in a seeded random order, one at a
 * time, and their images pass through a shuffle buffer that holds `buffer` images' pixels; each
 * output image is a random slot of the buffer, refilled by the next incoming image. The order is
 * a function of (seed, epoch) alone. Evaluation reads the shards in order, without a buffer.
 * Images held out for validation are skipped by the training epochs and read on their own, image
 * by image at their place in the shards, in the order the in-memory split gives them.
 *
 * Memory bound: `buffer` images of pixels + one shard (64 MiB) + 2 bytes of label per image
 * (+ 1 byte per image of held-out mask and 4 per held-out image of validation order).
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '@tessera/core/random';
import type { ImageSet } from '../../store.ts';

export interface ShardIndex {
  dir: string;
  shards: { file: string; count: number }[];
  height: number;
  width: number;
  channels: number;
  labels: Uint16Array;
}

/** The shard files of a cache entry, read one at a time. */
export class ShardReader {
  readonly count: number;
  readonly imageBytes: number;
  /** Shard reads so far (for tests). */
  reads = 0;

  constructor(readonly index: ShardIndex) {
    this.imageBytes = index.height * index.width * index.channels;
    this.count = index.shards.reduce((n, s) => n + s.count, 0);
  }

  /** First image number of each shard. */
  private get starts(): number[] {
    const out: number[] = [];
    let total = 0;
    for (const shard of this.index.shards) out.push(total), (total += shard.count);
    return out;
  }

  read(s: number): Uint8Array {
    const shard = this.index.shards[s]!;
    const file = join(this.index.dir, shard.file);
    const bytes = readFileSync(file);
    if (bytes.length !== shard.count * this.imageBytes) throw new Error(`${file} has ${bytes.length} bytes, expected ${shard.count * this.imageBytes}`);
    this.reads++;
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * One epoch's images in order: `take(n)` returns the next n as a small planar set in shared
   * memory (a worker reads it in place). Training: seeded shard order + shuffle buffer.
   */
  openEpoch(shuffle: { rng: Rng; buffer: number } | undefined, skip?: Uint8Array): { take(n: number): ImageSet } {
    const { height, width, channels } = this.index;
    const size = this.imageBytes;
    const starts = this.starts;
    const shardOrder = this.index.shards.map((_, i) => i);
    if (shuffle) shuffle.rng.shuffle(shardOrder);
    let position = 0; // into shardOrder
    let within = 0;
    let current: Uint8Array | undefined;
    const wanted = (s: number) => skip!.subarray(starts[s]!, starts[s]! + this.index.shards[s]!.count).includes(0);
    /** The next image off the shards (one shard resident) that is not held out, or undefined at the end. */
    const incoming = (): { pixels: Uint8Array; label: number } | undefined => {
      for (;;) {
        while (position < shardOrder.length && (current === undefined || within >= this.index.shards[shardOrder[position]!]!.count)) {
          if (current !== undefined) (position++, (within = 0), (current = undefined));
          // A shard whose images are all held out is not read.
          while (position < shardOrder.length && skip && !wanted(shardOrder[position]!)) position++;
          if (position < shardOrder.length) current = this.read(shardOrder[position]!);
        }
        if (position >= shardOrder.length || !current) return undefined;
        const image = starts[shardOrder[position]!]! + within;
        const k = within++;
        if (skip?.[image]) continue;
        return { pixels: current.subarray(k * size, (k + 1) * size), label: this.index.labels[image]! };
      }
    };
    const capacity = shuffle ? Math.max(1, shuffle.buffer) : 0;
    const slots = new Uint8Array(capacity * size);
    const slotLabels = new Uint16Array(capacity);
    let filled = 0;
    return {
      take: (n) => {
        const bytes = new Uint8Array(new SharedArrayBuffer(n * size));
        const labels = new Uint16Array(new SharedArrayBuffer(n * 2));
        let b = 0;
        for (; b < n; b++) {
          if (!shuffle) {
            const next = incoming();
            if (!next) break;
            bytes.set(next.pixels, b * size);
            labels[b] = next.label;
            continue;
          }
          while (filled < capacity) {
            const next = incoming();
            if (!next) break;
            slots.set(next.pixels, filled * size);
            slotLabels[filled++] = next.label;
          }
          if (filled === 0) break;
          const j = shuffle.rng.int(filled);
          bytes.set(slots.subarray(j * size, (j + 1) * size), b * size);
          labels[b] = slotLabels[j]!;
          const next = incoming();
          if (next) {
            slots.set(next.pixels, j * size);
            slotLabels[j] = next.label;
          } else {
            filled--;
            slots.copyWithin(j * size, filled * size, (filled + 1) * size);
            slotLabels[j] = slotLabels[filled]!;
          }
        }
        return { bytes: bytes.subarray(0, b * size), labels: labels.subarray(0, b), count: b, height, width, channels, offset: 0, stride: size };
      },
    };
  }

  /** Every image, one shard at a time, in order: what adaptive transforms learn from (one pass). */
  *chunks(): Generator<ImageSet> {
    const { height, width, channels } = this.index;
    const starts = this.starts;
    for (let s = 0; s < this.index.shards.length; s++) {
      const count = this.index.shards[s]!.count;
      const labels = this.index.labels.subarray(starts[s]!, starts[s]! + count);
      yield { bytes: this.read(s), labels, count, height, width, channels, offset: 0, stride: this.imageBytes };
    }
  }

  /**
   * The images `indices` (numbers in the entry), in that order: `take(n)` reads the next n, each
   * from its place in its shard file, so only those images are read and one batch is in memory.
   */
  openSubset(indices: Int32Array): { take(n: number): ImageSet } {
    const { height, width, channels, shards, labels: allLabels } = this.index;
    const size = this.imageBytes;
    const starts = this.starts;
    /** The shard holding image i (binary search over the shards' first image numbers). */
    const shardOf = (i: number) => {
      let lo = 0;
      let hi = starts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid]! <= i) lo = mid;
        else hi = mid - 1;
      }
      return lo;
    };
    let next = 0;
    return {
      take: (n) => {
        const count = Math.min(n, indices.length - next);
        const bytes = new Uint8Array(new SharedArrayBuffer(count * size));
        const labels = new Uint16Array(new SharedArrayBuffer(count * 2));
        // Read in file order (slots keep the requested order): sequential reads within a shard.
        const slots = Array.from({ length: count }, (_, b) => b).sort((a, b) => indices[next + a]! - indices[next + b]!);
        let open: { shard: number; fd: number } | undefined;
        try {
          for (const b of slots) {
            const image = indices[next + b]!;
            const s = shardOf(image);
            if (open?.shard !== s) {
              if (open) closeSync(open.fd);
              open = { shard: s, fd: openSync(join(this.index.dir, shards[s]!.file), 'r') };
            }
            const read = readSync(open.fd, bytes, b * size, size, (image - starts[s]!) * size);
            if (read !== size) throw new Error(`${join(this.index.dir, shards[s]!.file)} is shorter than its ${shards[s]!.count} images`);
            labels[b] = allLabels[image]!;
          }
        } finally {
          if (open) closeSync(open.fd);
        }
        next += count;
        return { bytes, labels, count, height, width, channels, offset: 0, stride: size };
      },
    };
  }
}
