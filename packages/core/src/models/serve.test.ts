import { request } from 'node:http';
import { connect } from 'node:net';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamicBatcher, QueueFullError } from './batcher.ts';
import type { ModelMetadata } from './metadata.ts';
import { Predictor } from './predictor.ts';
import { startModelServer, type ModelServer } from './serve.ts';

/** A 4x4x3-input, 3-class model with fixed weights: logits = W . mean-pooled pixels / 255. */
function tinyPredictor(): Predictor {
  const model = tf.sequential({
    layers: [tf.layers.globalAveragePooling2d({ inputShape: [4, 4, 3] }), tf.layers.dense({ units: 3, kernelInitializer: 'glorotUniform', useBias: true })],
  });
  model.layers[1]!.setWeights([tf.tensor2d([[1, -1, 0.5], [0.2, 0.3, -0.4], [-0.7, 0.1, 0.9]]).div(40), tf.tensor1d([0.1, 0, -0.1])]);
  const metadata = { format: 2, experiment: 'tiny', which: 'final', rawShape: [4, 4, 3], inputShape: [4, 4, 3], classes: ['cat', 'dog', 'eel'], configDigest: 'abc', source: '-', seed: 0, runId: 'r1', data: {}, config: { train: {} } } as unknown as ModelMetadata;
  return new Predictor(model, metadata, []);
}

/** Image i: pixel values (i * 37 + y * 11 + x * 5 + c * 3) % 256 as an HxWxC array. */
function image(i: number): number[][][] {
  return Array.from({ length: 4 }, (_, y) => Array.from({ length: 4 }, (_, x) => Array.from({ length: 3 }, (_, c) => (i * 37 + y * 11 + x * 5 + c * 3) % 256)));
}

const fakeDecode = async (bytes: Uint8Array, options: { height: number; width: number; channels: number; name?: string }) => {
  if (Buffer.from(bytes).toString('latin1', 0, 3) !== 'IMG') throw new Error(`${options.name}: not a readable image (unknown format)`);
  return { data: new Uint8Array(options.height * options.width * options.channels).fill(bytes[3]!) };
};

let predictor: Predictor;
let server: ModelServer;

beforeAll(async () => {
  await tf.setBackend('cpu');
  predictor = tinyPredictor();
  server = await startModelServer({ predictor, decode: fakeDecode, port: 0, maxBatch: 8, maxWaitMs: 20, maxBodyBytes: 64 * 1024 });
});
afterAll(async () => {
  await server.close();
  predictor.dispose();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked field by field
const json = (response: Response): Promise<any> => response.json();

const post = (body: unknown, path = '/predict') =>
  fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

describe('exp serve (startModelServer)', () => {
  it('binds 127.0.0.1 by default and answers /health and /metadata', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await json(await fetch(`${server.url}/health`))).toEqual({ status: 'ok' });
    const metadata = await json(await fetch(`${server.url}/metadata`));
    expect(metadata).toMatchObject({ experiment: 'tiny', run_id: 'r1', classes: ['cat', 'dog', 'eel'], input: { shape: [4, 4, 3], dtype: 'uint8' } });
  });

  it('answers 16 concurrent requests each with its own probabilities (equal to a direct forward pass to 1e-6)', async () => {
    const before = server.batcher.stats.items;
    const responses = await Promise.all(Array.from({ length: 16 }, (_, i) => post({ instances: [image(i)] }, i % 2 ? '/invocations' : '/predict')));
    const bodies = await Promise.all(responses.map(json));
    const pixels = Float32Array.from(Array.from({ length: 16 }, (_, i) => image(i).flat(2)).flat());
    const direct = await predictor.probabilities({ pixels, count: 16, shape: [4, 4, 3] });
    bodies.forEach((body, i) => {
      expect(responses[i]!.status).toBe(200);
      const got = body.predictions[0].probabilities as number[];
      got.forEach((p, c) => expect(Math.abs(p - direct[i * 3 + c]!)).toBeLessThan(1e-6));
      expect(body.predictions[0].top_k[0].class).toBe(['cat', 'dog', 'eel'][got.indexOf(Math.max(...got))]);
    });
    expect(server.batcher.stats.items - before).toBe(16);
  });

  it('decodes base64 images and multipart files with the injected decoder; top_k is honoured', async () => {
    const encoded = Buffer.from('IMG\x10').toString('base64');
    const answer = await json(await post({ instances: [{ b64: encoded }, encoded], top_k: 2 }));
    expect(answer.predictions).toHaveLength(2);
    expect(answer.predictions[0].top_k).toHaveLength(2);
    expect(answer.predictions.map((p: { input: string }) => p.input)).toEqual(['instances[0]', 'instances[1]']);
    const form = new FormData();
    form.append('image', new Blob([Buffer.from('IMG\x10')]), 'a.png');
    form.append('image', new Blob([Buffer.from('IMG\x20')]), 'b.png');
    const multipart = await json(await fetch(`${server.url}/predict`, { method: 'POST', body: form }));
    expect(multipart.predictions[0].probabilities).toEqual(answer.predictions[0].probabilities);
    expect(multipart.predictions.map((p: { input: string }) => p.input)).toEqual(['a.png', 'b.png']);
  });

  it('answers bad input with 400 and a one-line reason, never crashing', async () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /body is not valid JSON/],
      [{ nothing: 1 }, /expected "instances"/],
      [{ instances: [] }, /no images in the request/],
      [{ instances: [[[[1, 2]]]] }, /expected 4 rows/],
      [{ instances: [image(0).map((row) => row.map((p) => p.slice(0, 2)))] }, /pixel \[0\]\[0\] has 2 channels; the model takes 3/],
      [{ instances: [Buffer.from('GIF89a-broken').toString('base64')] }, /instances\[0\]: not a readable image/],
      [{ instances: ['%%%'] }, /instances\[0\]: not valid base64/],
      [{ instances: [image(0)], top_k: 0 }, /"top_k" must be a positive integer/],
    ];
    for (const [body, reason] of cases) {
      const response = await post(body);
      expect(response.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      const { error } = await json(response);
      expect(error).toMatch(reason);
      expect(error).not.toContain('\n');
    }
    expect((await fetch(`${server.url}/predict`)).status).toBe(405);
    expect((await fetch(`${server.url}/etc/passwd`)).status).toBe(404);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('refuses a body over the limit with 413', async () => {
    const response = await post({ instances: ['A'.repeat(100 * 1024)] });
    expect(response.status).toBe(413);
    expect((await json(response)).error).toMatch(/limit of 65536 bytes|the limit is 65536/);
  });
});

describe('back-pressure and shutdown', () => {
  it('answers 503 with Retry-After when the queue is full, and finishes accepted requests on close', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = tinyPredictor();
    const probabilities = slow.probabilities.bind(slow);
    slow.probabilities = async (...args) => {
      await gate;
      return probabilities(...args);
    };
    const busy = await startModelServer({ predictor: slow, port: 0, maxBatch: 1, maxWaitMs: 0, maxQueue: 1 });
    const send = () => fetch(`${busy.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [image(1)] }) });
    const running = send();
    await new Promise((r) => setTimeout(r, 50));
    const queued = send();
    await new Promise((r) => setTimeout(r, 50));
    const refused = await send();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await json(refused)).error).toMatch(/server busy: 1 images queued \(limit 1\)/);
    const closed = busy.close();
    release();
    for (const answer of [await running, await queued]) {
      expect(answer.status).toBe(200);
      // Answered during shutdown: the connection closes with it, so close() need not wait out keep-alive.
      expect(answer.headers.get('connection')).toBe('close');
    }
    await closed;
    slow.dispose();
  });
});

describe('requests being received', () => {
  it('beyond maxIncoming are refused with 503 before their bodies are read; the slow ones still get answers', async () => {
    const limited = await startModelServer({ predictor, port: 0, maxIncoming: 2, maxBodyBytes: 64 * 1024 });
    const body = JSON.stringify({ instances: [image(1)] });
    // Two uploads that send half their body, then stall: both hold a slot.
    const stalled = [0, 1].map(() => {
      const req = request(`${limited.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
      const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        });
        req.on('error', reject);
      });
      req.write(body.slice(0, body.length >> 1));
      return { req, answered };
    });
    await new Promise((r) => setTimeout(r, 100));
    const refused = await fetch(`${limited.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(60 * 1024) });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('connection')).toBe('close');
    expect((await json(refused)).error).toBe('server busy: 2 requests being received (limit 2); retry shortly');
    expect((await json(await fetch(`${limited.url}/metadata`))).batching.max_incoming).toBe(2);
    for (const { req } of stalled) req.end(body.slice(body.length >> 1));
    for (const { answered } of stalled) {
      const { status, text } = await answered;
      expect(status).toBe(200);
      expect(JSON.parse(text).predictions[0].probabilities).toHaveLength(3);
    }
    // The slots are free again.
    expect((await post({ instances: [image(2)] }, '/predict')).status).toBe(200);
    await limited.close();
  });
});

describe('a client that goes away', () => {
  it('mid-body costs one log line (no stack trace), and the server answers the next request', async () => {
    const lines: string[] = [];
    const watched = await startModelServer({ predictor, port: 0, log: (line) => lines.push(line) });
    const { port } = new URL(watched.url);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.end('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"instances": [', () => socket.destroy());
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    for (let i = 0; i < 50 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(lines).toEqual(['a client closed its connection before its request was read (POST /predict)']);
    const answer = await fetch(`${watched.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [image(3)] }) });
    expect(answer.status).toBe(200);
    await watched.close();
  });
});

describe('DynamicBatcher', () => {
  it('gathers requests for up to maxWaitMs while more are incoming, and runs at once when none are', async () => {
    let incoming = 0;
    const sizes: number[] = [];
    const batcher = new DynamicBatcher<number>({ maxBatch: 8, maxWaitMs: 50, maxQueue: 100, incoming: () => incoming }, async (items) => {
      sizes.push(items.length);
      return items.map((v) => Float32Array.of(v * 2));
    });
    // Alone: nothing else incoming, so no wait.
    const started = performance.now();
    expect((await batcher.submit([1]))[0]![0]).toBe(2);
    expect(performance.now() - started).toBeLessThan(40);
    // Ten requests announced, arriving 2 ms apart: one batch of 8 (maxBatch), then the other 2.
    incoming = 10;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        new Promise((r) => setTimeout(r, 2 * i)).then(() => {
          incoming -= 1;
          return batcher.submit([i]);
        }),
      ),
    );
    expect(results.map((r) => r[0]![0])).toEqual(Array.from({ length: 10 }, (_, i) => 2 * i));
    expect(sizes).toEqual([1, 8, 2]);
  });

  it('refuses work beyond maxQueue (503 in the server) and drains what it accepted', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const seen: number[][] = [];
    const batcher = new DynamicBatcher<number>({ maxBatch: 2, maxWaitMs: 0, maxQueue: 3 }, async (items) => {
      seen.push(items);
      await gate;
      return items.map((v) => Float32Array.of(v));
    });
    const first = batcher.submit([1]); // runs at once, blocked on the gate
    const queued = [batcher.submit([2]), batcher.submit([3]), batcher.submit([4])];
    await expect(batcher.submit([5])).rejects.toBeInstanceOf(QueueFullError);
    release();
    expect((await first)[0]![0]).toBe(1);
    expect((await Promise.all(queued)).map((r) => r[0]![0])).toEqual([2, 3, 4]);
    await batcher.drained();
    expect(seen).toEqual([[1], [2, 3], [4]]);
  });
});
