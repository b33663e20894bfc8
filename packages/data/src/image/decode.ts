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
 * True for an 8-bit PNG that already is `height x width` with the asked channels and carries no
 * EXIF orientation or ICC profile: decoding is then all there is to do (decodeSimplePng).
 */
function pngNeedsNoWork(bytes: Buffer, options: DecodeOptions): boolean {
  if (bytes.length < 33 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b) || bytes.toString('latin1', 12, 16) !== 'IHDR') return false;
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  if (width !== options.width || height !== options.height || bytes[24] !== 8 || bytes[25] !== PNG_COLOUR_TYPE[options.channels]) return false;
  // A false positive inside compressed data only costs the general path.
  return bytes.indexOf('eXIf', 33, 'latin1') < 0 && bytes.indexOf('iCCP', 33, 'latin1') < 0;
}

/**
 * Decodes a PNG that `pngNeedsNoWork` accepted (8-bit, non-interlaced, already the target size
 * and channels) with zlib and the five PNG row filters, in this thread. Hand-written because for
 * small images libvips' per-image pipeline setup (~0.25 ms) is most of the cost, where this
 * takes a few microseconds: the same pixels (the test compares it with sharp), ~5x the images/s
 * for CIFAR-sized PNGs. Anything unusual (interlaced, missing IEND, short data) is undefined
 * (sharp decides) or a typed error.
 */
function decodeSimplePng(bytes: Buffer, channels: number, file: string): Uint8Array | undefined {
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  if (bytes[26] !== 0 || bytes[27] !== 0 || bytes[28] !== 0) return undefined; // compression, filter method, interlace
  const idat: Buffer[] = [];
  let at = 8;
  let ended = false;
  while (at + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > bytes.length) break;
    if (type === 'IDAT') idat.push(bytes.subarray(at + 8, at + 8 + length));
    else if (type === 'IEND') {
      ended = true;
      break;
    }
    at += 12 + length;
  }
  if (!ended || idat.length === 0) throw new ImageDecodeError(file, 'corrupt', 'corrupt or truncated image: PNG data ends early (no IEND chunk)');
  let raw: Buffer;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat));
  } catch (cause) {
    throw new ImageDecodeError(file, 'corrupt', `corrupt or truncated image: PNG data does not inflate (${(cause as Error).message})`, { cause });
  }
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new ImageDecodeError(file, 'corrupt', `corrupt or truncated image: ${raw.length} bytes of PNG rows, expected ${height * (stride + 1)}`);
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    for (let i = 0; i < stride; i++) {
      const x = raw[src + i]!;
      const a = i >= channels ? out[row + i - channels]! : 0;
      const b = y > 0 ? out[prev + i]! : 0;
      const c = i >= channels && y > 0 ? out[prev + i - channels]! : 0;
      let v: number;
      switch (filter) {
        case 0:
          v = x;
          break;
        case 1:
          v = x + a;
          break;
        case 2:
          v = x + b;
          break;
        case 3:
          v = x + ((a + b) >> 1);
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw new ImageDecodeError(file, 'corrupt', `corrupt image: PNG row ${y} has filter type ${filter}`);
      }
      out[row + i] = v & 0xff;
    }
  }
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
      const code = (cause as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (cause as Error).message;
      throw new ImageDecodeError(file, 'unreadable', `cannot read image: ${why}`, { cause });
    }
  } else {
    bytes = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  }
  if (bytes.length === 0) throw new ImageDecodeError(file, 'corrupt', 'empty file (0 bytes)');

  try {
    if (pngNeedsNoWork(bytes, options)) {
      const data = decodeSimplePng(bytes, channels, file);
      if (data) return { data, height, width, channels };
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
