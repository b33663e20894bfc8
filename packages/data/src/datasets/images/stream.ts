/**
 * Streaming a decoded cache entry that is larger than memory, as tf.data's
 * `shuffle(buffer)` does: in training the shards are read in a seeded random order, one at a
 * time, and their images pass through a shuffle buffer that holds `buffer` images' pixels; each
 * output image is a random slot of the buffer, refilled by the next incoming image. The order is
 * a function of (seed, epoch) alone. Evaluation reads the shards in order, without a buffer.
 *
 * Memory bound: `buffer` images of pixels + one shard (64 MiB) + 2 bytes of label per image.
 */
import { readFileSync } from 'node:fs';
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
  openEpoch(shuffle: { rng: Rng; buffer: number } | undefined): { take(n: number): ImageSet } {
    const { height, width, channels } = this.index;
    const size = this.imageBytes;
    const starts = this.starts;
    const shardOrder = this.index.shards.map((_, i) => i);
    if (shuffle) shuffle.rng.shuffle(shardOrder);
    let position = 0; // into shardOrder
    let within = 0;
    let current: Uint8Array | undefined;
    /** The next image off the shards (one shard resident), or undefined at the end. */
    const incoming = (): { pixels: Uint8Array; label: number } | undefined => {
      while (position < shardOrder.length && (current === undefined || within >= this.index.shards[shardOrder[position]!]!.count)) {
        if (current !== undefined) (position++, (within = 0), (current = undefined));
        if (position < shardOrder.length) current = this.read(shardOrder[position]!);
      }
      if (position >= shardOrder.length || !current) return undefined;
      const s = shardOrder[position]!;
      const k = within++;
      return { pixels: current.subarray(k * size, (k + 1) * size), label: this.index.labels[starts[s]! + k]! };
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

  /** The first `limit` images, in memory: what adaptive transforms learn from when streaming. */
  sample(limit: number): ImageSet {
    return this.openEpoch(undefined).take(Math.min(limit, this.count));
  }
}
