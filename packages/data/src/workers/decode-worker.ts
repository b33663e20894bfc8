/**
 * A decode worker: decodes ranges of an image list (decode-range.ts) into a SharedArrayBuffer
 * during the first pass, so the first pass uses every core (small PNGs decode in JavaScript,
 * on whichever thread runs decodeRange). It loads only the decoder, not TF.js.
 */
import { parentPort } from 'node:worker_threads';
import { decodeRange } from '../datasets/images/decode-range.ts';
import type { DecodeJob, FromDecodeWorker } from './protocol.ts';

/** Progress messages at most every this many images. */
const PROGRESS_EVERY = 256;

parentPort!.on('message', async (job: DecodeJob) => {
  let reply: FromDecodeWorker;
  let unreported = 0;
  try {
    const failures = await decodeRange(job.range, new Uint8Array(job.target), () => {
      if (++unreported < PROGRESS_EVERY) return;
      parentPort!.postMessage({ kind: 'progress', jobId: job.jobId, decoded: unreported } satisfies FromDecodeWorker);
      unreported = 0;
    });
    reply = { kind: 'decoded', jobId: job.jobId, decoded: unreported, failures };
  } catch (e) {
    reply = { kind: 'error', jobId: job.jobId, message: (e as Error).message, ...((e as Error).stack ? { stack: (e as Error).stack } : {}) };
  }
  parentPort!.postMessage(reply);
});
