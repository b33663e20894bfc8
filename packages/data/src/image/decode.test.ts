import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { encode as encodeBmp } from 'bmp-ts';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../datasets/errors.ts';
import { ImageDecodeError, decodeImage, probeImage } from './decode.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-decode-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Raw pixels from a per-pixel function: HWC uint8. */
function pixels(h: number, w: number, c: number, f: (y: number, x: number, ch: number) => number): Buffer {
  const out = Buffer.alloc(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = f(y, x, ch);
  return out;
}
const raw = (h: number, w: number, c: 1 | 2 | 3 | 4, f: (y: number, x: number, ch: number) => number) =>
  sharp(pixels(h, w, c, f), { raw: { height: h, width: w, channels: c } });

const RED = [220, 20, 30];
const BLUE = [25, 40, 210];
/** Left half red, right half blue. */
const halves = (h: number, w: number) => raw(h, w, 3, (_y, x, c) => (x < w / 2 ? RED : BLUE)[c]!);

function pixelAt(img: { data: Uint8Array; width: number; channels: number }, y: number, x: number): number[] {
  const at = (y * img.width + x) * img.channels;
  return [...img.data.subarray(at, at + img.channels)];
}
function expectClose(actual: number[], expected: number[], tolerance: number) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((v, i) => expect(Math.abs(v - expected[i]!), `channel ${i}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance));
}

describe('decodeImage', () => {
  it('decodes a PNG exactly: same size, every pixel equal to the source', async () => {
    const f = (y: number, x: number, c: number) => (y * 31 + x * 7 + c * 80) % 256;
    const png = await raw(5, 7, 3, f).png().toBuffer();
    const img = await decodeImage(png, { height: 5, width: 7, channels: 3 });
    expect([img.height, img.width, img.channels, img.data.length]).toEqual([5, 7, 3, 105]);
    expect(Buffer.from(img.data).equals(pixels(5, 7, 3, f))).toBe(true);
  });

  it('the in-thread PNG path gives exactly what libvips decodes: every row filter, gray, RGB, RGBA', async () => {
    for (const channels of [1, 3, 4] as const) {
      const f = (y: number, x: number, c: number) => ((y * 53) ^ (x * 29) ^ (c * 101)) % 256;
      for (const options of [{ adaptiveFiltering: true }, { adaptiveFiltering: false }, { compressionLevel: 0 }]) {
        const source = raw(32, 32, channels, f);
        const png = await (channels === 1 ? source.toColourspace('b-w') : source).png(options).toBuffer();
        expect(png[25], 'PNG colour type').toBe({ 1: 0, 3: 2, 4: 6 }[channels]);
        // sharp outputs gray as sRGB unless told: its first channel is the gray value.
        const viaSharp = await (channels === 1 ? sharp(png).extractChannel(0) : sharp(png)).raw().toBuffer();
        const img = await decodeImage(png, { height: 32, width: 32, channels });
        expect(Buffer.from(img.data).equals(viaSharp), `${channels} channels ${JSON.stringify(options)}`).toBe(true);
      }
    }
  });

  it('the in-thread PNG path undoes each of the five row filters on every row position, as libvips does', async () => {
    /** A PNG written by hand whose row y uses filter `(y + shift) % 5` (the encoders choose filters themselves). */
    const handmade = (h: number, w: number, channels: 1 | 3 | 4, shift: number, f: (y: number, x: number, c: number) => number) => {
      const stride = w * channels;
      const px = pixels(h, w, channels, f);
      const rows = Buffer.alloc(h * (stride + 1));
      for (let y = 0; y < h; y++) {
        const filter = (y + shift) % 5;
        rows[y * (stride + 1)] = filter;
        for (let i = 0; i < stride; i++) {
          const x = px[y * stride + i]!;
          const a = i >= channels ? px[y * stride + i - channels]! : 0;
          const b = y > 0 ? px[(y - 1) * stride + i]! : 0;
          const c = i >= channels && y > 0 ? px[(y - 1) * stride + i - channels]! : 0;
          const p = a + b - c;
          const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
          const predictor = [0, a, b, (a + b) >> 1, paeth][filter]!;
          rows[y * (stride + 1) + 1 + i] = (x - predictor) & 0xff;
        }
      }
      const chunk = (type: string, data: Buffer) => {
        const out = Buffer.alloc(12 + data.length);
        out.writeUInt32BE(data.length, 0);
        out.write(type, 4, 'latin1');
        data.copy(out, 8);
        out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
        return out;
      };
      const ihdr = Buffer.alloc(13);
      ihdr.writeUInt32BE(w, 0);
      ihdr.writeUInt32BE(h, 4);
      ihdr[8] = 8;
      ihdr[9] = { 1: 0, 3: 2, 4: 6 }[channels];
      const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
      return { png, px };
    };
    // Every filter on the first row (no row above) and on later rows.
    for (const channels of [1, 3, 4] as const) {
      for (let shift = 0; shift < 5; shift++) {
        const { png, px } = handmade(10, 9, channels, shift, (y, x, c) => ((y * 97) ^ (x * 61) ^ (c * 151) ^ (x * y * 13)) % 256);
        const img = await decodeImage(png, { height: 10, width: 9, channels });
        expect(Buffer.from(img.data).equals(px), `${channels} channels, shift ${shift}`).toBe(true);
        const viaSharp = await (channels === 1 ? sharp(png).extractChannel(0) : sharp(png)).raw().toBuffer();
        expect(viaSharp.equals(px), `libvips, ${channels} channels, shift ${shift}`).toBe(true);
      }
    }
  });

  it('reads from a path and from bytes alike', async () => {
    const file = join(tmp, 'a.png');
    writeFileSync(file, await halves(8, 8).png().toBuffer());
    const a = await decodeImage(file, { height: 8, width: 8, channels: 3 });
    const b = await decodeImage(new Uint8Array(await halves(8, 8).png().toBuffer()), { height: 8, width: 8, channels: 3 });
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
  });

  it('downscales with antialiased bilinear: a triangle filter as wide as the scale, edges replicated (naive formula)', async () => {
    const f = (y: number, x: number) => [[0, 40, 100, 200, 7, 90], [20, 60, 120, 220, 33, 1], [5, 9, 250, 250, 128, 64], [1, 3, 246, 246, 17, 200]][y]![x]!;
    /** 1-D weights of output i over inputs when n inputs shrink to m: tent of half-width n/m around the output centre. */
    const weights = (n: number, m: number, i: number) => {
      const scale = n / m;
      const centre = (i + 0.5) * scale - 0.5;
      const w = new Map<number, number>();
      for (let k = Math.floor(centre - scale); k <= Math.ceil(centre + scale); k++) {
        const t = 1 - Math.abs(k - centre) / scale;
        if (t <= 0) continue;
        const at = Math.min(n - 1, Math.max(0, k));
        w.set(at, (w.get(at) ?? 0) + t);
      }
      const total = [...w.values()].reduce((a, b) => a + b, 0);
      return [...w].map(([k, v]) => [k, v / total] as const);
    };
    const expected: number[] = [];
    for (let y = 0; y < 2; y++)
      for (let x = 0; x < 3; x++) {
        let v = 0;
        for (const [yy, wy] of weights(4, 2, y)) for (const [xx, wx] of weights(6, 3, x)) v += wy * wx * f(yy, xx);
        expected.push(v);
      }
    const img = await decodeImage(await raw(4, 6, 1, f).png().toBuffer(), { height: 2, width: 3, channels: 1 });
    expectClose([...img.data], expected, 1);
  });

  it('a PNG already at size but carrying EXIF orientation is rotated (not taken by the in-thread path)', async () => {
    // Left red / right blue, orientation 6: displayed rotated 90 clockwise, red on top.
    const png = await halves(8, 8).png().withMetadata({ orientation: 6 }).toBuffer();
    expect(png.includes(Buffer.from('eXIf')), 'sharp writes an eXIf chunk').toBe(true);
    const img = await decodeImage(png, { height: 8, width: 8, channels: 3 });
    expect(pixelAt(img, 0, 0)).toEqual(RED);
    expect(pixelAt(img, 7, 0)).toEqual(BLUE);
  });

  it('applies the EXIF orientation (6: rotate 90 clockwise) before resizing', async () => {
    // Stored 64 wide x 32 tall, left red / right blue; orientation 6 displays it 32 wide x 64
    // tall with the stored left column on top: top half red, bottom half blue.
    const jpeg = await halves(32, 64).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    expect(await probeImage(jpeg)).toEqual({ width: 32, height: 64, format: 'jpeg' });
    const img = await decodeImage(jpeg, { height: 4, width: 2, channels: 3, interpolation: 'nearest' });
    expectClose(pixelAt(img, 0, 0), RED, 6);
    expectClose(pixelAt(img, 0, 1), RED, 6);
    expectClose(pixelAt(img, 3, 0), BLUE, 6);
    expectClose(pixelAt(img, 3, 1), BLUE, 6);
  });

  it('converts grayscale to RGB (each channel the gray value) and RGB to grayscale (luma)', async () => {
    const gray = await raw(4, 4, 1, () => 100).png().toBuffer();
    const rgb = await decodeImage(gray, { height: 4, width: 4, channels: 3 });
    expect(pixelAt(rgb, 2, 3)).toEqual([100, 100, 100]);
    const colour = await raw(4, 4, 3, (_y, _x, c) => [200, 100, 50][c]!).png().toBuffer();
    const luma = await decodeImage(colour, { height: 4, width: 4, channels: 1 });
    // Rec. 601 luma of (200, 100, 50): 0.299*200 + 0.587*100 + 0.114*50 = 124.2 (libvips works in linear light, so allow a little).
    expectClose(pixelAt(luma, 1, 1), [124], 6);
  });

  it('drops alpha for 3 channels (as PIL convert("RGB")) and adds opaque alpha for 4', async () => {
    const rgba = await raw(4, 4, 4, (_y, x, c) => [10, 20, 30, x < 2 ? 0 : 255][c]!).png().toBuffer();
    const rgb = await decodeImage(rgba, { height: 4, width: 4, channels: 3 });
    expect(pixelAt(rgb, 0, 0)).toEqual([10, 20, 30]);
    expect(pixelAt(rgb, 0, 3)).toEqual([10, 20, 30]);
    const kept = await decodeImage(rgba, { height: 4, width: 4, channels: 4 });
    expect(pixelAt(kept, 0, 0)).toEqual([10, 20, 30, 0]);
    const opaque = await decodeImage(await halves(4, 4).png().toBuffer(), { height: 4, width: 4, channels: 4 });
    expect(pixelAt(opaque, 0, 0)).toEqual([...RED, 255]);
  });

  it('reads BMP, WebP, GIF, TIFF and 16-bit PNG', async () => {
    const f = (y: number, x: number, c: number) => (y * 50 + x * 20 + c * 70) % 256;
    // bmp-ts takes ABGR bytes.
    const abgr = pixels(3, 5, 4, (y, x, c) => (c === 0 ? 255 : f(y, x, 3 - c)));
    const bmp = encodeBmp({ width: 5, height: 3, data: abgr, bitPP: 24 }).data;
    const fromBmp = await decodeImage(bmp, { height: 3, width: 5, channels: 3 });
    expect(Buffer.from(fromBmp.data).equals(pixels(3, 5, 3, f))).toBe(true);

    const webp = await decodeImage(await raw(3, 5, 3, f).webp({ lossless: true }).toBuffer(), { height: 3, width: 5, channels: 3 });
    expect(Buffer.from(webp.data).equals(pixels(3, 5, 3, f))).toBe(true);
    const gif = await decodeImage(await halves(4, 4).gif().toBuffer(), { height: 4, width: 4, channels: 3 });
    expectClose(pixelAt(gif, 0, 0), RED, 8);
    const tiff = await decodeImage(await raw(3, 5, 3, f).tiff({ compression: 'lzw' }).toBuffer(), { height: 3, width: 5, channels: 3 });
    expect(Buffer.from(tiff.data).equals(pixels(3, 5, 3, f))).toBe(true);

    const png16 = await raw(4, 4, 3, (_y, _x, c) => [200, 100, 50][c]!).toColourspace('rgb16').png().toBuffer();
    expect((await sharp(png16).metadata()).depth).toBe('ushort');
    const from16 = await decodeImage(png16, { height: 4, width: 4, channels: 3 });
    expectClose(pixelAt(from16, 1, 1), [200, 100, 50], 1);
  });

  it('fit: cover crops the centre and contain pads with black, keeping the aspect ratio', async () => {
    // 8 tall x 16 wide: red | blue halves. Into 8x8: cover keeps the middle (half red, half
    // blue); contain shrinks to 4x8 with black bands above and below.
    const png = await halves(8, 16).png().toBuffer();
    const cover = await decodeImage(png, { height: 8, width: 8, channels: 3, fit: 'cover', interpolation: 'nearest' });
    expect(pixelAt(cover, 4, 0)).toEqual(RED);
    expect(pixelAt(cover, 4, 7)).toEqual(BLUE);
    const contain = await decodeImage(png, { height: 8, width: 8, channels: 3, fit: 'contain', interpolation: 'nearest' });
    expect(pixelAt(contain, 0, 0)).toEqual([0, 0, 0]);
    expect(pixelAt(contain, 4, 0)).toEqual(RED);
    expect(pixelAt(contain, 7, 7)).toEqual([0, 0, 0]);
  });

  it('throws ImageDecodeError naming the file: corrupt, truncated, not an image, a format it does not read (SVG, AVIF), missing, empty', async () => {
    const jpeg = await halves(64, 64).jpeg().toBuffer();
    const png = await halves(64, 64).png().toBuffer();
    // Already 8x8 RGB: the fast path (decode only) must catch truncation too.
    const small = await raw(8, 8, 3, (y, x, c) => (y * 97 + x * 31 + c * 59) % 256).png({ compressionLevel: 0 }).toBuffer();
    const files: Record<string, Buffer> = {
      'truncated.jpg': jpeg.subarray(0, Math.floor(jpeg.length / 2)),
      'truncated.png': png.subarray(0, Math.floor(png.length / 2)),
      'truncated-8x8.png': small.subarray(0, Math.floor(small.length * 0.7)),
      'text.png': Buffer.from('this is not an image\n'),
      'empty.jpg': Buffer.alloc(0),
      'bad.bmp': Buffer.from('BM garbage that is not a bitmap'),
      // libvips reads these too; decodeImage refuses them (an XML parser, a codec nobody asked for).
      'vector.svg': Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>'),
      'photo.avif': await halves(16, 16).avif().toBuffer(),
    };
    const dir = join(tmp, 'bad');
    mkdirSync(dir);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    const reasons: Record<string, string> = {};
    for (const name of [...Object.keys(files), 'missing.png']) {
      const file = join(dir, name);
      const error = await decodeImage(file, { height: 8, width: 8, channels: 3 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(ImageDecodeError);
      expect(error).toBeInstanceOf(DataError);
      expect((error as ImageDecodeError).message.startsWith(`${file}: `)).toBe(true);
      reasons[name] = (error as ImageDecodeError).reason;
    }
    expect(reasons).toEqual({
      'truncated.jpg': 'corrupt',
      'truncated.png': 'corrupt',
      'truncated-8x8.png': 'corrupt',
      'text.png': 'unsupported',
      'empty.jpg': 'corrupt',
      'bad.bmp': 'corrupt',
      'vector.svg': 'unsupported',
      'photo.avif': 'unsupported',
      'missing.png': 'unreadable',
    });
  });

  it('names a buffer input by options.name and rejects a bad target shape', async () => {
    await expect(decodeImage(Buffer.from('nope'), { height: 2, width: 2, channels: 3, name: 'upload.jpg' })).rejects.toThrow(/^upload\.jpg: not a readable image/);
    await expect(decodeImage(Buffer.from('nope'), { height: 0, width: 2, channels: 3 })).rejects.toThrow(RangeError);
    await expect(decodeImage(Buffer.from('nope'), { height: 2, width: 2, channels: 2 as 3 })).rejects.toThrow(RangeError);
  });
});
