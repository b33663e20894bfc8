import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DataError } from './errors.ts';

export interface DownloadOptions {
  /** Expected md5 (hex) of the complete file; a mismatch deletes the download and throws. */
  md5: string;
  log?: (message: string) => void;
  /** Progress is logged at every `progressStep` fraction of the file (default 0.1). */
  progressStep?: number;
}

export async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Downloads `url` to `dest`: into `dest + '.part'` first, resumed with an HTTP Range request
 * when a partial file is there from an earlier attempt, md5-checked, then renamed into place so
 * that `dest` is never a half-written file.
 */
export async function downloadFile(url: string, dest: string, options: DownloadOptions): Promise<void> {
  const log = options.log ?? (() => {});
  const part = `${dest}.part`;
  await mkdir(dirname(dest), { recursive: true });
  const have = await stat(part).then((s) => s.size, () => 0);
  const response = await fetch(url, have > 0 ? { headers: { Range: `bytes=${have}-` } } : {}).catch(
    (cause: unknown) => {
      throw new DataError(url, `download failed: ${describeCause(cause)}`, { cause });
    },
  );
  if (response.status === 416 && have > 0) {
    // The partial file is already complete (the rename was interrupted).
    await response.body?.cancel();
  } else {
    if (!response.ok) {
      throw new DataError(url, `download failed: HTTP ${response.status} ${response.statusText}`);
    }
    const resumed = have > 0 && response.status === 206;
    if (have > 0) log(resumed ? `resuming ${url} at byte ${have}` : `server ignored the resume request; restarting ${url}`);
    const start = resumed ? have : 0;
    const length = Number(response.headers.get('content-length') ?? NaN);
    const total = start + length;
    const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
    const step = options.progressStep ?? 0.1;
    let received = start;
    let nextReport = step;
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        received += chunk.length;
        if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
        if (Number.isFinite(total) && received / total >= nextReport) {
          log(`downloading ${url}: ${Math.floor((100 * received) / total)}% of ${formatBytes(total)}`);
          while (received / total >= nextReport) nextReport += step;
        }
      }
    } catch (cause) {
      throw new DataError(url, `download interrupted at byte ${received}; run again to resume: ${describeCause(cause)}`, { cause });
    } finally {
      await new Promise<void>((resolve) => out.end(() => resolve()));
    }
  }
  const actual = await md5File(part);
  if (actual !== options.md5) {
    await rm(part, { force: true });
    throw new DataError(dest, `downloaded file has md5 ${actual}, expected ${options.md5}; deleted it, run again to retry`);
  }
  await rename(part, dest);
  log(`downloaded ${dest}`);
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}
