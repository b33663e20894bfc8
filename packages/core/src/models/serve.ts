import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamicBatcher, QueueFullError } from './batcher.ts';
import { concatFloat32, type ImageDecoder } from './inputs.ts';
import type { Predictor } from './predictor.ts';

/* ------------------------------------------------------------------------------------------ *
 * `exp serve`: a model behind Node's http (no framework: four routes do not need one).        *
 *   POST /predict (alias /invocations, MLflow's path): JSON {"instances": [...]} where each   *
 *     instance is a base64 image, {"b64": ...}, or an HxWxC array of 0..255 numbers; or       *
 *     multipart/form-data with image files. Answers {"predictions": [{top_k, probabilities}]}. *
 *   GET /health, GET /metadata.                                                               *
 * The server never reads paths from requests; bad input is a 400 with a one-line reason.      *
 * ------------------------------------------------------------------------------------------ */

export interface ServeOptions {
  predictor: Predictor;
  /** Decodes encoded images (packages/data's decodeImage); without it only pixel arrays are accepted. */
  decode?: ImageDecoder;
  /** Default 127.0.0.1: the model is not exposed beyond this machine unless asked. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Images per forward pass (default 32). */
  maxBatch?: number;
  /** How long the first waiting request waits for others (default 5 ms; 0 = no dynamic batching). */
  maxWaitMs?: number;
  /** Images waiting before requests are refused with 503 (default 256). */
  maxQueue?: number;
  /**
   * Requests being received or decoded at once before more are refused with 503 (default 32):
   * with the body limit, this bounds the memory that a flood of uploads can take before the queue
   * (which counts decoded images only) sees them.
   */
  maxIncoming?: number;
  /** Images in one request (default 64). */
  maxImagesPerRequest?: number;
  /** Request body limit in bytes (default 20 MiB). */
  maxBodyBytes?: number;
  /** Classes returned per image unless the request says `top_k` (default 5). */
  topK?: number;
  log?: (message: string) => void;
}

export interface ModelServer {
  url: string;
  port: number;
  batcher: DynamicBatcher<Float32Array>;
  /** Stops accepting connections, answers what is in flight, then resolves. */
  close(): Promise<void>;
}

/** A request's problem: answered with its status and a one-line reason. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, `request body is ${declared} bytes; the limit is ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body exceeds the limit of ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** An encoded image or a pixel array, as the request gave it. */
type Instance = { encoded: Uint8Array; name: string } | { pixels: unknown; name: string };

function decodeBase64(text: string, name: string): Uint8Array {
  const data = text.replace(/^data:[^,]*;base64,/, '');
  if (!/^[A-Za-z0-9+/=_\-\s]*$/.test(data)) throw new HttpError(400, `${name}: not valid base64`);
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length === 0) throw new HttpError(400, `${name}: empty image`);
  return bytes;
}

function jsonInstances(body: Buffer): { instances: Instance[]; topK?: number } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new HttpError(400, `body is not valid JSON: ${(error as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new HttpError(400, 'expected a JSON object {"instances": [...]}');
  const object = json as Record<string, unknown>;
  const list = object.instances ?? object.inputs ?? object.images;
  if (!Array.isArray(list)) throw new HttpError(400, 'expected "instances" (or "inputs", "images"): a list of base64 images, {"b64": ...} objects or HxWxC pixel arrays');
  const instances = list.map((item: unknown, i): Instance => {
    const name = `instances[${i}]`;
    if (typeof item === 'string') return { encoded: decodeBase64(item, name), name };
    if (item && typeof item === 'object' && !Array.isArray(item) && typeof (item as { b64?: unknown }).b64 === 'string') {
      return { encoded: decodeBase64((item as { b64: string }).b64, name), name };
    }
    if (Array.isArray(item)) return { pixels: item, name };
    throw new HttpError(400, `${name}: expected a base64 string, {"b64": ...} or an HxWxC array of numbers`);
  });
  const topK = object.top_k;
  if (topK !== undefined && !(Number.isInteger(topK) && (topK as number) > 0)) throw new HttpError(400, '"top_k" must be a positive integer');
  return { instances, ...(topK !== undefined ? { topK: topK as number } : {}) };
}

async function multipartInstances(body: Buffer, contentType: string): Promise<Instance[]> {
  let form: FormData;
  try {
    // Node's fetch (undici) parses multipart/form-data: no hand-written parser, no dependency.
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch (error) {
    throw new HttpError(400, `malformed multipart body: ${(error as Error).message}`);
  }
  const instances: Instance[] = [];
  for (const [field, value] of form.entries()) {
    if (typeof value === 'string') continue;
    instances.push({ encoded: new Uint8Array(await value.arrayBuffer()), name: value.name || field });
  }
  return instances;
}

/** A nested HxWxC array of 0..255 numbers, checked against the model's shape. */
function pixelArray(value: unknown, shape: readonly number[], name: string): Float32Array {
  const [height, width, channels] = shape as [number, number, number];
  const out = new Float32Array(height * width * channels);
  const rows = value as unknown[];
  if (!Array.isArray(rows) || rows.length !== height) throw new HttpError(400, `${name}: expected ${height} rows of ${width}x${channels} pixels, got ${Array.isArray(rows) ? rows.length : typeof rows}`);
  let k = 0;
  for (let y = 0; y < height; y++) {
    const row = rows[y] as unknown[];
    if (!Array.isArray(row) || row.length !== width) throw new HttpError(400, `${name}: row ${y} should have ${width} pixels`);
    for (let x = 0; x < width; x++) {
      const pixel = row[x] as unknown[];
      if (!Array.isArray(pixel) || pixel.length !== channels) {
        throw new HttpError(400, `${name}: pixel [${y}][${x}] has ${Array.isArray(pixel) ? pixel.length : 'no'} channels; the model takes ${channels}`);
      }
      for (let c = 0; c < channels; c++) {
        const v = pixel[c];
        if (typeof v !== 'number' || !(v >= 0 && v <= 255)) throw new HttpError(400, `${name}: pixel [${y}][${x}][${c}] is ${JSON.stringify(v)}, expected a number in 0..255`);
        out[k++] = v;
      }
    }
  }
  return out;
}

export async function startModelServer(options: ServeOptions): Promise<ModelServer> {
  const { predictor } = options;
  const log = options.log ?? (() => {});
  const maxBatch = options.maxBatch ?? 32;
  const maxWaitMs = options.maxWaitMs ?? 5;
  const maxImages = options.maxImagesPerRequest ?? 64;
  const maxBody = options.maxBodyBytes ?? 20 * 1024 * 1024;
  const defaultTopK = options.topK ?? 5;
  const maxIncoming = options.maxIncoming ?? 32;
  const shape = predictor.rawShape;
  /** /predict requests being read or decoded: the batcher waits for them only. */
  let incoming = 0;
  /** Set by close(): new requests get 503, and every answer closes its connection (no keep-alive to wait out). */
  let closing = false;
  const reply: typeof send = (res, status, body, headers = {}) => send(res, status, body, closing ? { ...headers, connection: 'close' } : headers);
  const batcher = new DynamicBatcher<Float32Array>({ maxBatch, maxWaitMs, maxQueue: options.maxQueue ?? 256, incoming: () => incoming }, async (images) => {
    const probabilities = await predictor.probabilities({ pixels: concatFloat32(images), count: images.length, shape }, maxBatch);
    const n = predictor.numClasses;
    return images.map((_, i) => probabilities.slice(i * n, (i + 1) * n));
  });

  const metadata = {
    experiment: predictor.metadata.experiment,
    run_id: predictor.metadata.runId ?? null,
    which: predictor.metadata.which,
    config_digest: predictor.metadata.configDigest,
    classes: predictor.classes,
    input: { shape, dtype: 'uint8', formats: options.decode ? ['base64 image (PNG, JPEG, WebP, GIF, TIFF, BMP)', 'multipart/form-data files', 'HxWxC pixel array'] : ['HxWxC pixel array'] },
    batching: { max_batch: maxBatch, max_wait_ms: maxWaitMs, max_queue: batcher.options.maxQueue, max_incoming: maxIncoming, max_images_per_request: maxImages, max_body_bytes: maxBody },
  };

  async function toPixels(instance: Instance): Promise<Float32Array> {
    if ('pixels' in instance) return pixelArray(instance.pixels, shape, instance.name);
    if (!options.decode) throw new HttpError(400, `${instance.name}: this server has no image decoder; send HxWxC pixel arrays`);
    try {
      const decoded = await options.decode(instance.encoded, { height: shape[0], width: shape[1], channels: shape[2] as 1 | 3 | 4, name: instance.name });
      return Float32Array.from(decoded.data);
    } catch (error) {
      const message = (error as Error).message.split('\n')[0]!;
      throw new HttpError(400, message.startsWith(instance.name) ? message : `${instance.name}: ${message}`);
    }
  }

  async function predict(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Refused before a byte of its body is read (the answer closes the connection).
    if (incoming >= maxIncoming) throw new HttpError(503, `server busy: ${incoming} requests being received (limit ${maxIncoming}); retry shortly`);
    incoming += 1;
    let submitted = false;
    const submit = (pixels: Float32Array[]) => {
      incoming -= 1;
      submitted = true;
      return batcher.submit(pixels);
    };
    try {
      await answer(req, res, submit);
    } finally {
      if (!submitted) incoming -= 1;
    }
  }

  async function answer(req: IncomingMessage, res: ServerResponse, submit: (pixels: Float32Array[]) => Promise<Float32Array[]>): Promise<void> {
    const body = await readBody(req, maxBody);
    const contentType = req.headers['content-type'] ?? '';
    let instances: Instance[];
    let topK = defaultTopK;
    if (contentType.startsWith('multipart/form-data')) instances = await multipartInstances(body, contentType);
    else if (contentType.startsWith('application/json') || contentType === '') {
      const parsed = jsonInstances(body);
      instances = parsed.instances;
      topK = parsed.topK ?? topK;
    } else throw new HttpError(415, `content-type ${contentType} is not accepted; send application/json or multipart/form-data`);
    if (instances.length === 0) throw new HttpError(400, 'no images in the request');
    if (instances.length > maxImages) throw new HttpError(400, `${instances.length} images in one request; the limit is ${maxImages}`);
    const pixels = await Promise.all(instances.map(toPixels));
    let results: Float32Array[];
    try {
      results = await submit(pixels);
    } catch (error) {
      if (error instanceof QueueFullError) throw new HttpError(503, error.message);
      throw error;
    }
    const predictions = results.map((probabilities, i) => {
      const top = predictor.topK(probabilities, 0, topK);
      return {
        // Which image: a multipart file's name, else its place in the request (instances[i]).
        input: instances[i]!.name,
        top_k: top.indices.map((index, j) => ({ class: top.classes[j], index, probability: top.probabilities[j] })),
        probabilities: Array.from(probabilities),
      };
    });
    reply(res, 200, { predictions });
  }

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const handle = async () => {
      if (closing) throw new HttpError(503, 'server is shutting down');
      if (path === '/health' || path === '/ping') {
        if (req.method !== 'GET') throw new HttpError(405, `${path} takes GET`);
        reply(res, 200, { status: 'ok' });
      } else if (path === '/metadata') {
        if (req.method !== 'GET') throw new HttpError(405, `${path} takes GET`);
        reply(res, 200, { ...metadata, stats: { ...batcher.stats, queued: batcher.queued } });
      } else if (path === '/predict' || path === '/invocations') {
        if (req.method !== 'POST') throw new HttpError(405, `${path} takes POST`);
        await predict(req, res);
      } else {
        throw new HttpError(404, `no route ${path}; routes: POST /predict, POST /invocations, GET /health, GET /metadata`);
      }
    };
    handle().catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      // The client went away mid-request: no one to answer, and nothing wrong with the server.
      if (req.destroyed && !(error instanceof HttpError)) return void log(`a client closed its connection before its request was read (${req.method} ${path})`);
      if (error instanceof HttpError) {
        // Unread body bytes (a 413 mid-upload, a 503 before reading) would otherwise stall the client: close after answering.
        const unread = !req.readableEnded;
        reply(res, error.status, { error: error.message }, { ...(error.status === 503 ? { 'retry-after': '1' } : {}), ...(unread ? { connection: 'close' } : {}) });
      } else {
        log(`error: ${(error as Error).stack ?? String(error)}`);
        reply(res, 500, { error: `internal error: ${(error as Error).message.split('\n')[0]}` });
      }
    });
  });
  server.requestTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    batcher,
    async close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await batcher.drained();
      await closed;
    },
  };
}
