// Throughput and latency of `exp serve` with the reference MLP-Mixer on CIFAR-100.
//
//   pnpm bench serve                                  tensorflow (native), 3 rounds of 4 s per setting
//   pnpm bench serve -- --backend wasm --seconds 5 --no-write
//
// Builds the Mixer of experiments/mixer.yaml (initial weights: the forward pass costs the same
// as a trained one's) with its real preprocessing state (normalization statistics of the
// CIFAR-100 training split), starts the server in this process on 127.0.0.1, and runs closed-loop
// clients: each sends one 32x32 PNG (a CIFAR-100 test image, base64 JSON) and waits for the
// answer before sending the next. For 1 and 16 concurrent clients, with dynamic batching
// (max batch 32, max wait 5 ms) and without (max batch 1, max wait 0: one forward pass per
// request), it reports requests/s (median of rounds) and the p50/p99 latency, and writes the
// table under "## Serving" in bench/results.md (replacing that section only). The settings
// alternate within each round in one process, so they share the machine's load.
import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'tensorflow' },
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '1,16' },
    out: { type: 'string', default: join(benchDir, 'results.md') },
    'no-write': { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

const core = await import('../packages/core/src/index.ts');
const { builtinRegistries } = await import('../packages/builtins/src/index.ts');
const data = await import('../packages/data/src/index.ts');
const sharp = createRequire(join(repoRoot, 'packages', 'data', 'package.json'))('sharp') as typeof import('sharp');

const registries = builtinRegistries();
const backend = await core.selectBackend(values.backend as 'tensorflow', (m) => console.log(m));
const experiment = core.loadValidatedExperiment(join(repoRoot, 'experiments', 'mixer.yaml'), registries);
const { model } = core.buildExperimentModel(experiment, registries);
const dataset = await core.createExperimentData(experiment, registries, { log: (m) => console.log(m) });
const metadata = core.modelMetadata({ config: experiment.config, dataset, which: 'init', source: 'experiments/mixer.yaml', seed: experiment.seed });
const transforms = data.restoreTransforms(metadata.data.transforms, metadata.data.state, registries);
const predictor = new core.Predictor(model, metadata, transforms);

// One real test image as PNG: the first record of test.bin (2 label bytes, then R, G, B planes).
const dataDir = process.env.TESSERA_DATA_DIR || join(repoRoot, '..', 'shared', 'data', 'cifar-100');
const testBin = existsSync(join(dataDir, 'test.bin')) ? readFileSync(join(dataDir, 'test.bin')) : undefined;
const rgb = Buffer.alloc(32 * 32 * 3);
for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = testBin ? testBin[2 + c * 1024 + p]! : (p * 7 + c * 50) % 256;
const png = await sharp(rgb, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
const body = JSON.stringify({ instances: [png.toString('base64')], top_k: 5 });

const percentile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

interface Row {
  clients: number;
  batching: boolean;
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
  meanBatch: number;
}

interface Sample {
  requests: number;
  perSecond: number;
  latencies: number[];
  batches: number;
  items: number;
}

async function measure(clients: number, batching: boolean, seconds: number): Promise<Sample> {
  const server = await core.startModelServer({
    predictor,
    decode: data.decodeImage,
    port: 0,
    maxBatch: batching ? 32 : 1,
    maxWaitMs: batching ? 5 : 0,
    maxQueue: 1024,
  });
  const url = `${server.url}/predict`;
  const send = async () => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };
  for (let i = 0; i < 5; i++) await send(); // warm-up: kernels, connections
  const before = { ...server.batcher.stats };
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await send();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const batches = server.batcher.stats.batches - before.batches;
  const items = server.batcher.stats.items - before.items;
  await server.close();
  return { requests: latencies.length, perSecond: latencies.length / elapsed, latencies, batches, items };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const settings = values.clients!.split(',').map(Number).flatMap((clients) => [false, true].map((batching) => ({ clients, batching })));
const samples = new Map<string, Sample[]>();
// Rounds alternate the settings, so that a busy moment of the (shared) machine hits all of them.
for (let round = 1; round <= rounds; round++) {
  for (const { clients, batching } of settings) {
    const sample = await measure(clients, batching, seconds);
    console.log(`round ${round}: ${clients} client(s), batching ${batching ? 'on ' : 'off'}: ${sample.perSecond.toFixed(1)} req/s (${sample.requests} requests)`);
    samples.set(`${clients}/${batching}`, [...(samples.get(`${clients}/${batching}`) ?? []), sample]);
  }
}
const rows: Row[] = settings.map(({ clients, batching }) => {
  const list = samples.get(`${clients}/${batching}`)!;
  const latencies = list.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const batches = list.reduce((n, s) => n + s.batches, 0);
  const items = list.reduce((n, s) => n + s.items, 0);
  return { clients, batching, requests: latencies.length, perSecond: median(list.map((s) => s.perSecond)), p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), meanBatch: items / Math.max(1, batches) };
});
for (const row of rows) {
  console.log(`${row.clients} client(s), batching ${row.batching ? 'on ' : 'off'}: ${row.perSecond.toFixed(1)} req/s, p50 ${row.p50.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms, mean batch ${row.meanBatch.toFixed(1)}`);
}
predictor.dispose();

const speedups = values.clients!.split(',').map(Number).map((clients) => {
  const off = rows.find((r) => r.clients === clients && !r.batching)!;
  const on = rows.find((r) => r.clients === clients && r.batching)!;
  return `${clients} client(s): batching ${(on.perSecond / off.perSecond).toFixed(2)}x the requests/s`;
});
const date = new Date().toISOString().slice(0, 16).replace('T', ' ');
const section = [
  '## Serving',
  '',
  `\`pnpm bench serve -- --backend ${values.backend} --seconds ${seconds} --rounds ${rounds}\` on ${date} UTC, ${cpus().length} x ${cpus()[0]?.model.split(' ').slice(0, 2).join(' ') ?? 'CPU'}, Node ${process.version}, backend ${backend.name}, load average ${loadavg()[0]!.toFixed(1)} at the end.`,
  `The reference MLP-Mixer (experiments/mixer.yaml, ${model.countParams().toLocaleString('en-US')} parameters, normalize -> resize 64x64 of the CIFAR-100 statistics) behind \`exp serve\`'s server`,
  'on 127.0.0.1, in the same process as the clients. Closed loop: each client POSTs one 32x32 PNG (base64 JSON, top_k 5: decode,',
  'preprocess, forward, softmax, JSON answer) and waits for the answer before the next. "batching off" is max batch 1, max wait 0',
  `(one forward pass per request); "on" is max batch 32, max wait 5 ms (the defaults). ${rounds} rounds of ${seconds} s per setting, each after 5`,
  'warm-up requests, the settings alternating within each round in one process; requests/s is the median of the rounds, the latency',
  'percentiles are over every request of the setting, as the client sees it.',
  '',
  '| clients | dynamic batching | requests/s | p50 ms | p99 ms | mean images per forward pass |',
  '|---:|---|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.clients} | ${r.batching ? 'on' : 'off'} | ${r.perSecond.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.meanBatch.toFixed(1)} |`),
  '',
  ...speedups.map((s) => `- ${s}`),
  '',
].join('\n');

if (!values['no-write']) {
  const previous = existsSync(values.out!) ? readFileSync(values.out!, 'utf8') : '# Benchmarks\n';
  // Replace only our own section, so other benchmarks' results stay.
  const pattern = /## Serving\n[\s\S]*?(?=\n## |$)/;
  writeFileSync(values.out!, pattern.test(previous) ? previous.replace(pattern, section) : `${previous.trimEnd()}\n\n${section}`);
  console.log(`wrote the "Serving" section of ${values.out}`);
} else {
  console.log(section);
}
