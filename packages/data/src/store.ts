import type { RawImages } from '@tessera/core/registry';

/**
 * Decoded images kept compact as uint8 in the layout they arrive in (CIFAR's planar records,
 * used in place: decoding is just reading the file) plus one label per image.
 * Conversion to float NHWC happens per batch, in `gatherBatch`.
 */
export interface ImageSet extends RawImages {
  /** Class indices; 16 bits, since a folder of photos may have more than 256 classes. */
  labels: Uint8Array | Uint16Array;
}

/** The examples of one split: a view (index list) into an ImageSet, no copy. */
export interface SplitView {
  set: ImageSet;
  indices: Int32Array;
}

export function range(start: number, end: number): Int32Array {
  const out = new Int32Array(Math.max(0, end - start));
  for (let i = 0; i < out.length; i++) out[i] = start + i;
  return out;
}

/**
 * Copies the images `indices[from..to)` into a float32 NHWC buffer (0..255 scale) and their
 * labels into an int32 buffer: the planar-to-interleaved transpose and the uint8-to-float
 * conversion are one pass here.
 */
export function gatherBatch(
  view: SplitView,
  order: Int32Array,
  from: number,
  to: number,
): { pixels: Float32Array; labels: Int32Array } {
  const { set } = view;
  const plane = set.height * set.width;
  const channels = set.channels;
  const imageSize = plane * channels;
  const pixels = new Float32Array((to - from) * imageSize);
  const labels = new Int32Array(to - from);
  const bytes = set.bytes;
  for (let b = 0; b < to - from; b++) {
    const index = view.indices[order[from + b]!]!;
    labels[b] = set.labels[index]!;
    const source = set.offset + index * set.stride;
    const target = b * imageSize;
    for (let c = 0; c < channels; c++) {
      const planeStart = source + c * plane;
      for (let p = 0, t = target + c; p < plane; p++, t += channels) pixels[t] = bytes[planeStart + p]!;
    }
  }
  return { pixels, labels };
}

/**
 * Per-channel mean and population variance over all images (on the raw 0..255 scale), given at
 * once or in chunks read one after another (a split streamed from disk: one pass, one chunk in
 * memory). A float64 histogram per channel makes the sums exact, so chunks give bit for bit the
 * result of the images at once, whatever the chunking.
 */
export function channelMoments(images: RawImages | Iterable<RawImages>): { mean: number[]; variance: number[] } {
  const histograms: Float64Array[] = [];
  let pixels = 0;
  for (const chunk of Symbol.iterator in images ? images : [images]) {
    const plane = chunk.height * chunk.width;
    if (histograms.length === 0) for (let c = 0; c < chunk.channels; c++) histograms.push(new Float64Array(256));
    if (histograms.length !== chunk.channels) throw new Error(`channelMoments: a chunk has ${chunk.channels} channels, the first had ${histograms.length}`);
    histograms.forEach((histogram, c) => {
      for (let i = 0; i < chunk.count; i++) {
        const start = chunk.offset + i * chunk.stride + c * plane;
        for (let p = start; p < start + plane; p++) histogram[chunk.bytes[p]!]!++;
      }
    });
    pixels += chunk.count * plane;
  }
  const mean: number[] = [];
  const variance: number[] = [];
  for (const histogram of histograms) {
    let sum = 0;
    for (let v = 0; v < 256; v++) sum += v * histogram[v]!;
    const m = sum / pixels;
    let squares = 0;
    for (let v = 0; v < 256; v++) squares += (v - m) * (v - m) * histogram[v]!;
    mean.push(m);
    variance.push(squares / pixels);
  }
  return { mean, variance };
}
