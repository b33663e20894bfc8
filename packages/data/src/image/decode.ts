/**
 * Decoding an image file into uint8 HWC pixels of a fixed size: the one decoder that datasets,
 * prediction and serving share.
 *
 * Why sharp (libvips): it installs from the npm registry alone (the prebuilt libvips comes as
 * the optional dependency `@img/sharp-<platform>`, no compiler and no other host), decodes
 * JPEG/PNG/WebP/GIF/TIFF with libjpeg-turbo/libpng/libwebp, applies EXIF orientation, converts
 * colour spaces and 16-bit images, and runs every decode on libuv's thread pool, so decoding is
 * off the JavaScript thread and uses several cores without worker plumbing. Pure-JS decoders
 * (jimp, pngjs + jpeg-js) are 5-20x slower and do not read EXIF; TF.js' `tf.node.decodeImage`
 * exists only with the native backend and has no resize with antialiasing.
 *
 * BMP: libvips' prebuilt build has no BMP loader, so BMP files are parsed by `bmp-ts` (a small,
 * maintained pure-TypeScript decoder) and handed to sharp as raw pixels for the same resize.
 */
import { readFile } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { decode as decodeBmp } from 'bmp-ts';
import sharp, { type KernelEnum, type Sharp } from 'sharp';
import { DataError } from '../datasets/errors.ts';

/** How the image is brought to the target size. */
export type ResizeFit =
  /** Stretch to exactly height x width, ignoring the aspect ratio (Keras' image_dataset_from_directory default). */
  | 'fill'
  /** Keep the aspect ratio and crop the centre (Keras' `crop_to_aspect_ratio: true`). */
  | 'cover'
  /** Keep the aspect ratio and pad with black (Keras' `pad_to_aspect_ratio: true`). */
  | 'contain';

export type Interpolation = 'bilinear' | 'nearest' | 'bicubic' | 'lanczos3';

export interface DecodeOptions {
  /** Output height in pixels. */
  height: number;
  /** Output width in pixels. */
  width: number;
  /** 1 (grayscale), 3 (RGB) or 4 (RGBA). Alpha is dropped for 3 (as Keras/PIL `convert('RGB')`), added opaque for 4. */
  channels: 1 | 3 | 4;
  /** Default 'fill'. */
  fit?: ResizeFit;
  /**
   * Default 'bilinear' (Keras' default). Downscaling is antialiased as in PIL: each output pixel
   * averages the inputs under a tent as wide as the scale (edges replicated), where
   * tf.image.resize without antialias samples only the 2x2 nearest inputs and aliases.
   */
  interpolation?: Interpolation;
  /** Named in errors when the input is a buffer (a path names itself). */
  name?: string;
}

export interface DecodedImage {
  /** height * width * channels bytes, row-major HWC. */
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/** Why an image could not be decoded. */
export type ImageErrorReason =
  /** The file could not be read (missing, permission, a directory). */
  | 'unreadable'
  /** Not an image format the decoder knows. */
  | 'unsupported'
  /** A known format whose data is corrupt or truncated. */
  | 'corrupt';

/** An image that could not be decoded: the message starts with the file and says why. */
export class ImageDecodeError extends DataError {
  override name = 'ImageDecodeError';

  constructor(
    file: string,
    readonly reason: ImageErrorReason,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(file, problem, options);
  }
}

/** The error for an image file that could not be read, naming the usual causes plainly. */
export function unreadableImage(file: string, cause: unknown): ImageDecodeError {
  const code = (cause as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (cause as Error).message;
  return new ImageDecodeError(file, 'unreadable', `cannot read image: ${why}`, { cause });
}

/** File extensions the decoder reads (lower case, with the dot). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.gif', '.tif', '.tiff'];

const kernels: Record<Interpolation, keyof KernelEnum> = {
  bilinear: 'linear',
  nearest: 'nearest',
  bicubic: 'cubic',
  lanczos3: 'lanczos3',
};

function isBmp(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x42 && bytes[1] === 0x4d; // "BM"
}

/**
 * Whether the bytes start as one of the formats of IMAGE_EXTENSIONS does (PNG, JPEG, GIF, WebP,
 * TIFF, BMP). libvips would parse more (SVG, HEIF): those are refused, so bytes from a request
 * to `exp serve` never reach an XML parser or a codec nobody asked for.
 */
function isReadableFormat(bytes: Uint8Array): boolean {
  const startsWith = (at: number, ...values: number[]) => bytes.length >= at + values.length && values.every((v, i) => bytes[at + i] === v);
  const ascii = (at: number, text: string) => startsWith(at, ...Array.from(text, (ch) => ch.charCodeAt(0)));
  return (
    startsWith(0, 0x89, 0x50, 0x4e, 0x47) || // PNG
    startsWith(0, 0xff, 0xd8, 0xff) || // JPEG
    ascii(0, 'GIF8') ||
    (ascii(0, 'RIFF') && ascii(8, 'WEBP')) ||
    startsWith(0, 0x49, 0x49, 0x2a, 0x00) || // TIFF, little-endian
    startsWith(0, 0x4d, 0x4d, 0x00, 0x2a) || // TIFF, big-endian
    isBmp(bytes)
  );
}

/** A BMP as a sharp pipeline over its raw RGB(A) pixels. */
function bmpPipeline(bytes: Buffer, file: string): Sharp {
  let bmp;
  try {
    bmp = decodeBmp(bytes, { toRGBA: true });
  } catch (cause) {
    throw new ImageDecodeError(file, 'corrupt', `corrupt BMP: ${(cause as Error).message}`, { cause });
  }
  const { width, height, data } = bmp;
  if (!(width > 0 && height > 0) || data.length < width * height * 4) {
    throw new ImageDecodeError(file, 'corrupt', `corrupt BMP: ${width}x${height} with ${data.length} bytes of pixels`);
  }
  // bmp-ts fills alpha with 0 for formats without alpha; only 32-bit BMPs carry a real one.
  const hasAlpha = bmp.bitPP === 32;
  const pixels = Buffer.alloc(width * height * (hasAlpha ? 4 : 3));
  for (let p = 0, q = 0; p < width * height; p++) {
    pixels[q++] = data[p * 4]!;
    pixels[q++] = data[p * 4 + 1]!;
    pixels[q++] = data[p * 4 + 2]!;
    if (hasAlpha) pixels[q++] = data[p * 4 + 3]!;
  }
  return sharp(pixels, { raw: { width, height, channels: hasAlpha ? 4 : 3 } });
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG colour type (IHDR) that already has the asked channels: gray, RGB, RGBA. */
const PNG_COLOUR_TYPE: Record<number, number> = { 1: 0, 3: 2, 4: 6 };

/**
 * True for an 8-bit PNG that already is `height x width` with the asked channels: decoding is
 * then all there is to do (inflateSimplePng), unless it carries EXIF orientation or an ICC
 * profile (inflateSimplePng finds those chunks and leaves the image to sharp).
 */
function pngNeedsNoWork(bytes: Buffer, options: DecodeOptions): boolean {
  if (bytes.length < 33 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b) || bytes.toString('latin1', 12, 16) !== 'IHDR') return false;
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  return width === options.width && height === options.height && bytes[24] === 8 && bytes[25] === PNG_COLOUR_TYPE[options.channels];
}

/**
 * Inflates and unfilters a PNG that `pngNeedsNoWork` accepted (8-bit, non-interlaced, already
 * the target size and channels) with zlib and the five PNG row filters, in this thread: the
 * result holds `height` rows of 1 filter byte + `width * channels` pixel bytes (the filters
 * undone in place), row y's pixels at `y * (stride + 1) + 1`. Hand-written because for small
 * images libvips' per-image pipeline setup (~0.25 ms) is most of the cost, where this takes a
 * few microseconds: the same pixels (the test compares it with sharp), ~5x the images/s for
 * CIFAR-sized PNGs. Anything unusual (interlaced, missing IEND, short data) is undefined (sharp
 * decides) or a typed error.
 */
function inflateSimplePng(bytes: Buffer, channels: number, file: string): Buffer | undefined {
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  if (bytes[26] !== 0 || bytes[27] !== 0 || bytes[28] !== 0) return undefined; // compression, filter method, interlace
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let at = 8;
  let ended = false;
  while (at + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(at);
    if (at + 12 + length > bytes.length) break;
    // Chunk types by their bytes ("IDAT", "IEND"): no string per chunk.
    const t0 = bytes[at + 4];
    const t1 = bytes[at + 5];
    const t2 = bytes[at + 6];
    const t3 = bytes[at + 7];
    if (t0 === 0x49 && t1 === 0x44 && t2 === 0x41 && t3 === 0x54) {
      const chunk = bytes.subarray(at + 8, at + 8 + length);
      if (!first) first = chunk;
      else (more ??= [first]).push(chunk);
    } else if (t0 === 0x49 && t1 === 0x45 && t2 === 0x4e && t3 === 0x44) {
      ended = true;
      break;
    } else if ((t0 === 0x65 && t1 === 0x58 && t2 === 0x49 && t3 === 0x66) || (t0 === 0x69 && t1 === 0x43 && t2 === 0x43 && t3 === 0x50)) {
      return undefined; // eXIf (orientation) or iCCP (colour profile): sharp applies them
    }
    at += 12 + length;
  }
  if (!ended || !first) throw new ImageDecodeError(file, 'corrupt', 'corrupt or truncated image: PNG data ends early (no IEND chunk)');
  let raw: Buffer;
  try {
    raw = inflateSync(more ? Buffer.concat(more) : first);
  } catch (cause) {
    throw new ImageDecodeError(file, 'corrupt', `corrupt or truncated image: PNG data does not inflate (${(cause as Error).message})`, { cause });
  }
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new ImageDecodeError(file, 'corrupt', `corrupt or truncated image: ${raw.length} bytes of PNG rows, expected ${height * (stride + 1)}`);
  unfilterRows(raw, height, stride, channels, file);
  return raw;
}

/**
 * Undoes the PNG row filters in place. One loop per filter type, the first pixel of a row apart
 * (no left neighbour) and the first row apart (no row above): no per-byte branches.
 */
function unfilterRows(raw: Buffer, height: number, stride: number, bpp: number, file: string): void {
  const line = stride + 1;
  for (let y = 0; y < height; y++) {
    const filter = raw[y * line]!;
    const row = y * line + 1;
    const up = row - line; // the previous row's pixels (filters already undone)
    const end = row + stride;
    switch (filter) {
      case 0:
        break;
      case 1: // Sub: + left
        for (let i = row + bpp; i < end; i++) raw[i] = (raw[i]! + raw[i - bpp]!) & 0xff;
        break;
      case 2: // Up: + above
        if (y > 0) for (let i = row; i < end; i++) raw[i] = (raw[i]! + raw[i - line]!) & 0xff;
        break;
      case 3: // Average of left and above
        if (y === 0) {
          for (let i = row + bpp; i < end; i++) raw[i] = (raw[i]! + (raw[i - bpp]! >> 1)) & 0xff;
        } else {
          for (let i = row; i < row + bpp; i++) raw[i] = (raw[i]! + (raw[i - line]! >> 1)) & 0xff;
          for (let i = row + bpp; i < end; i++) raw[i] = (raw[i]! + ((raw[i - bpp]! + raw[i - line]!) >> 1)) & 0xff;
        }
        break;
      case 4: // Paeth
        if (y === 0) {
          // Above and upper-left are 0: the predictor is the left byte.
          for (let i = row + bpp; i < end; i++) raw[i] = (raw[i]! + raw[i - bpp]!) & 0xff;
        } else {
          // No left neighbour: the predictor is the byte above.
          for (let i = row; i < row + bpp; i++) raw[i] = (raw[i]! + raw[i - line]!) & 0xff;
          for (let i = row + bpp, j = up + bpp; i < end; i++, j++) {
            const a = raw[i - bpp]!;
            const b = raw[j]!;
            const c = raw[j - bpp]!;
            const pa = Math.abs(b - c);
            const pb = Math.abs(a - c);
            const pc = Math.abs(a + b - 2 * c);
            raw[i] = (raw[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
          }
        }
        break;
      default:
        throw new ImageDecodeError(file, 'corrupt', `corrupt image: PNG row ${y} has filter type ${filter}`);
    }
  }
}

/** The unfiltered rows of inflateSimplePng as HWC pixels. */
function rowsToHwc(raw: Buffer, height: number, stride: number): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) out.set(raw.subarray(y * (stride + 1) + 1, y * (stride + 1) + 1 + stride), y * stride);
  return out;
}

/** libvips' message names the cause; the first line is enough for a user. */
function classify(file: string, cause: unknown): ImageDecodeError {
  const message = (cause as Error)?.message ?? String(cause);
  const first = message.split('\n')[0]!.trim();
  if (/unsupported image format|Input buffer contains unsupported/i.test(message)) {
    return new ImageDecodeError(file, 'unsupported', 'not a readable image (unknown format)', { cause });
  }
  return new ImageDecodeError(file, 'corrupt', `corrupt or truncated image: ${first}`, { cause });
}

/**
 * Decodes an encoded image (a path or the file's bytes) into `height x width x channels` uint8
 * pixels, EXIF orientation applied, colour converted to the requested channels.
 * Throws ImageDecodeError for an unreadable file, an unknown format or corrupt data (including
 * truncated JPEG/PNG, which libvips would otherwise only warn about).
 */
export async function decodeImage(input: string | Uint8Array, options: DecodeOptions): Promise<DecodedImage> {
  const { height, width, channels } = options;
  if (!(Number.isInteger(height) && height > 0 && Number.isInteger(width) && width > 0)) {
    throw new RangeError(`decodeImage: height and width must be positive integers, got ${height}x${width}`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new RangeError(`decodeImage: channels must be 1, 3 or 4, got ${channels}`);
  }
  const file = typeof input === 'string' ? input : (options.name ?? '<image bytes>');
  let bytes: Buffer;
  if (typeof input === 'string') {
    try {
      bytes = await readFile(input);
    } catch (cause) {
      throw unreadableImage(file, cause);
    }
  } else {
    bytes = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  }
  if (bytes.length === 0) throw new ImageDecodeError(file, 'corrupt', 'empty file (0 bytes)');
  if (!isReadableFormat(bytes)) throw new ImageDecodeError(file, 'unsupported', 'not a readable image (unknown format; PNG, JPEG, WebP, GIF, TIFF and BMP are read)');

  try {
    if (pngNeedsNoWork(bytes, options)) {
      const rows = inflateSimplePng(bytes, channels, file);
      if (rows) return { data: rowsToHwc(rows, height, width * channels), height, width, channels };
    }
    // failOn 'warning': a truncated JPEG/PNG is an error, not a half-grey image.
    let image = isBmp(bytes) ? bmpPipeline(bytes, file) : sharp(bytes, { failOn: 'warning', pages: 1 });
    image = image.autoOrient().resize({
      height,
      width,
      fit: options.fit ?? 'fill',
      kernel: kernels[options.interpolation ?? 'bilinear'],
      background: { r: 0, g: 0, b: 0, alpha: 1 },
    });
    if (channels === 1) image = image.grayscale();
    else image = image.toColourspace('srgb');
    image = channels === 4 ? image.ensureAlpha(1) : image.removeAlpha();
    const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height || info.channels !== channels || data.length !== height * width * channels) {
      // Should not happen; a wrong shape must never reach a training batch silently.
      throw new Error(`decoder returned ${info.width}x${info.height}x${info.channels} (${data.length} bytes), wanted ${width}x${height}x${channels}`);
    }
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height, width, channels };
  } catch (cause) {
    if (cause instanceof ImageDecodeError) throw cause;
    throw classify(file, cause);
  }
}

/** HWC pixels into CHW at `target[at..]` (the layout ImageSet stores). */
export function toPlanar(hwc: Uint8Array, target: Uint8Array, at: number, plane: number, channels: number): void {
  for (let c = 0; c < channels; c++) {
    const base = at + c * plane;
    for (let p = 0, s = c; p < plane; p++, s += channels) target[base + p] = hwc[s]!;
  }
}

/**
 * decodeImage for the decoded cache: an image file's bytes decoded straight into `target` at
 * byte `at`, planar (CHW, what ImageSet stores), the same pixels as decodeImage. A PNG that
 * needs no work is decoded synchronously (returns undefined: no promise, no pixel copy);
 * anything else returns decodeImage's promise. `bytes` and `options` are only read before this
 * returns (the caller may reuse them): the slow path decodes copies.
 */
export function decodeImagePlanar(bytes: Buffer, options: DecodeOptions, target: Uint8Array, at: number): Promise<void> | undefined {
  const { height, width, channels } = options;
  if (pngNeedsNoWork(bytes, options)) {
    const rows = inflateSimplePng(bytes, channels, options.name ?? '<image bytes>');
    if (rows) {
      const stride = width * channels;
      const plane = height * width;
      if (channels === 3) {
        // RGB (the usual case) in one pass over the rows.
        for (let y = 0, r = at, g = at + plane, b = at + 2 * plane; y < height; y++) {
          const end = y * (stride + 1) + 1 + stride;
          for (let from = y * (stride + 1) + 1; from < end; from += 3) {
            target[r++] = rows[from]!;
            target[g++] = rows[from + 1]!;
            target[b++] = rows[from + 2]!;
          }
        }
      } else {
        for (let c = 0; c < channels; c++) {
          let to = at + c * plane;
          for (let y = 0; y < height; y++) {
            const end = y * (stride + 1) + 1 + stride;
            for (let from = y * (stride + 1) + 1 + c; from < end; from += channels) target[to++] = rows[from]!;
          }
        }
      }
      return undefined;
    }
  }
  // Copies: the caller may reuse both the bytes and the options object.
  return decodeImage(Buffer.from(bytes), { ...options }).then((image) => toPlanar(image.data, target, at, height * width, channels));
}

/** Width, height and format of an encoded image without decoding its pixels (EXIF orientation applied). */
export async function probeImage(input: string | Uint8Array, name?: string): Promise<{ width: number; height: number; format: string }> {
  const file = typeof input === 'string' ? input : (name ?? '<image bytes>');
  let bytes: Buffer;
  try {
    bytes = typeof input === 'string' ? await readFile(input) : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  } catch (cause) {
    throw new ImageDecodeError(file, 'unreadable', `cannot read image: ${(cause as Error).message}`, { cause });
  }
  if (isBmp(bytes)) {
    const image = await bmpPipeline(bytes, file).metadata();
    return { width: image.width!, height: image.height!, format: 'bmp' };
  }
  try {
    const meta = await sharp(bytes).metadata();
    return { width: meta.autoOrient?.width ?? meta.width!, height: meta.autoOrient?.height ?? meta.height!, format: meta.format ?? 'unknown' };
  } catch (cause) {
    throw classify(file, cause);
  }
}
