import { DataError } from './errors.ts';

/**
 * A minimal reader for the (ustar / GNU) tar archives the CIFAR binaries ship in: regular files
 * only, long GNU names and pax path records honoured. Small enough that a dependency is not worth
 * it, and it works on the in-memory archive without copying file contents.
 */
export function readTar(archive: Uint8Array, file: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const text = (start: number, length: number) => {
    const bytes = archive.subarray(start, start + length);
    const end = bytes.indexOf(0);
    return Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString('utf8');
  };
  let offset = 0;
  let pendingName: string | undefined;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    if (!checksumOk(header)) {
      throw new DataError(file, `not a valid tar archive (bad header checksum at byte ${offset})`);
    }
    const size = parseInt(text(offset + 124, 12).trim() || '0', 8);
    const kind = String.fromCharCode(header[156]!);
    const prefix = text(offset + 345, 155);
    const headerName = prefix ? `${prefix}/${text(offset, 100)}` : text(offset, 100);
    const dataStart = offset + 512;
    if (dataStart + size > archive.length) {
      throw new DataError(file, `tar archive is truncated (entry "${headerName}" needs ${size} bytes)`);
    }
    const data = archive.subarray(dataStart, dataStart + size);
    if (kind === 'L') {
      pendingName = text(dataStart, size);
    } else if (kind === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.from(data).toString('utf8'));
      if (path) pendingName = path[1];
    } else {
      if (kind === '0' || kind === '\0') files.set(pendingName ?? headerName, data);
      pendingName = undefined;
    }
    offset = dataStart + Math.ceil(size / 512) * 512;
  }
  return files;
}

function checksumOk(header: Uint8Array): boolean {
  const stored = parseInt(Buffer.from(header.subarray(148, 156)).toString('latin1').replace(/\0/g, ' ').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
  return sum === stored;
}

/** Writes a ustar archive (for tests and for tools that package data). */
export function writeTar(entries: Record<string, Uint8Array | string>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, content] of Object.entries(entries)) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(data.length.toString(8).padStart(11, '0') + '\0', 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0' + '00', 257);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    parts.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
