// Throughput of the full CIFAR-100 training input pipeline, as the reference experiments use it.
//
//   pnpm bench data                                   wasm, and tensorflow when it loads
//   pnpm bench data -- --backends wasm --batches 20 --warmup 3 --no-write
//
// Loads the real CIFAR-100 (../shared/data/cifar-100 from the repository root, or
// TESSERA_DATA_DIR), builds the pipeline normalize -> resize 64x64 -> random_flip ->
// random_zoom(0.2, 0.2) with the last 10% held out, and times whole training batches of 128:
// the host-side gather (uint8 planar -> float32 NHWC) and the transforms as TF.js ops. Reports the
// median batch after a warm-up, in images/s, and writes it under "## Data pipeline" in
// bench/results.md (replacing that section only).
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
    backends: { type: 'string', default: 'wasm,tensorflow' },
    batches: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    batch: { type: 'string', default: '128' },
    out: { type: 'string', default: join(benchDir, 'results.md') },
    'no-write': { type: 'boolean', default: false },
    suite: { type: 'string', default: 'images,pipeline' },
    'png-root': { type: 'string' },
  },
  allowPositionals: true,
});

const core = await import('../packages/core/src/index.ts');
const { registerData } = await import('../packages/data/src/index.ts');
// tfjs is a dependency of the packages, not of the repository root: load core's copy (the same instance).
const tf = createRequire(join(repoRoot, 'packages', 'core', 'package.json'))('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const dataDir = process.env.TESSERA_DATA_DIR || join(repoRoot, '..', 'shared', 'data', 'cifar-100');
const suites = String(values.suite).split(',');

/** Replaces one `## title` section of results.md (or appends it), leaving the others. */
function writeSection(title: string, section: string): void {
  if (values['no-write']) {
    console.log(section);
    return;
  }
  const previous = existsSync(values.out!) ? readFileSync(values.out!, 'utf8') : '# Benchmarks\n';
  const pattern = new RegExp(`## ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n[\\s\\S]*?(?=\n## |$)`);
  const next = pattern.test(previous) ? previous.replace(pattern, section) : `${previous.trimEnd()}\n\n${section}`;
  writeFileSync(values.out!, next);
  console.log(`wrote the "${title}" section of ${values.out}`);
}

if (suites.includes('images')) {
  const { benchImageFolder } = await import('./lib/image-folder.ts');
  const root = values['png-root'] ?? join(core.cacheRoot(), 'bench', 'cifar100-png');
  const table = await benchImageFolder({ cifarDir: dataDir, root, batch: Number(values.batch), stepImagesPerSecond: 503 });
  writeSection(
    'Data: image folder',
    [
      '## Data: image folder',
      '',
      `\`pnpm bench data\` on ${new Date().toISOString().slice(0, 10)}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, load average ${loadavg()[0]!.toFixed(1)} at the end`,
      '(a shared machine: compare the two columns, measured in the same run, rather than absolute numbers).',
      'CIFAR-100\'s 50,000 training images written as PNGs in 100 class folders; both sides decode them to 32x32x3 uint8 and batch by 128, shuffled.',
      '',
      table,
      '',
    ].join('\n'),
  );
}
if (!suites.includes('pipeline')) process.exit(0);
const batchSize = Number(values.batch);
const warmup = Number(values.warmup);
const timed = Number(values.batches);
const transforms = [
  { type: 'normalize' },
  { type: 'resize', height: 64, width: 64 },
  { type: 'random_flip', mode: 'horizontal' },
  { type: 'random_zoom', height_factor: 0.2, width_factor: 0.2 },
];

interface Row {
  backend: string;
  medianMs: number;
  imagesPerSecond: number;
  gatherMs: number;
  loadSeconds: number;
}
const rows: Row[] = [];
const notes: string[] = [];

for (const backend of String(values.backends).split(',').filter(Boolean)) {
  try {
    await core.selectBackend(backend as 'wasm', (m) => console.log(m));
  } catch (error) {
    notes.push(`${backend}: not measured (${(error as Error).message.split('\n')[0]})`);
    console.log(notes.at(-1));
    continue;
  }
  const registries = registerData(core.createRegistries());
  const started = performance.now();
  const dataset = await registries.datasets.get('cifar100').create(
    { dir: dataDir, validation_split: 0.1, transforms },
    { configDir: repoRoot, seed: 42, registries, log: (m) => console.log(m) },
  );
  const loadSeconds = (performance.now() - started) / 1000;
  console.log(`${backend}: dataset ready in ${loadSeconds.toFixed(2)} s (decoded files are cached for the next run)`);

  const times: number[] = [];
  const iterator = dataset.batches('train', { batchSize, training: true, seed: 42, epoch: 0 })[Symbol.asyncIterator]();
  for (let i = 0; i < warmup + timed; i++) {
    const t0 = performance.now();
    const { value, done } = await iterator.next();
    if (done) break;
    // Read one value back so backends that queue work (none of the CPU ones do) finish the batch.
    value.x.dataSync().at(0);
    const t1 = performance.now();
    tf.dispose([value.x, value.y]);
    if (i >= warmup) times.push(t1 - t0);
    // Yield as a training step would (await loss.data()), which lets the prefetch run.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await iterator.return?.();

  // The host-side share: gathering and converting a batch without any TF.js op.
  const { gatherBatch } = await import('../packages/data/src/store.ts');
  const { CIFAR100, loadCifar } = await import('../packages/data/src/datasets/cifar.ts');
  const raw = await loadCifar(CIFAR100, { dir: dataDir, labelMode: 'fine', cacheDir: core.cacheRoot(), download: false, cacheDecoded: true, log: () => {} });
  const order = Int32Array.from({ length: raw.train.count }, (_, i) => (i * 7919) % raw.train.count);
  const view = { set: raw.train, indices: Int32Array.from({ length: raw.train.count }, (_, i) => i) };
  const gatherTimes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    gatherBatch(view, order, i * batchSize, (i + 1) * batchSize);
    gatherTimes.push(performance.now() - t0);
  }

  const medianMs = median(times);
  rows.push({ backend: tf.getBackend(), medianMs, imagesPerSecond: (batchSize * 1000) / medianMs, gatherMs: median(gatherTimes), loadSeconds });
  console.log(`${backend}: median ${medianMs.toFixed(1)} ms per batch of ${batchSize} = ${rows.at(-1)!.imagesPerSecond.toFixed(0)} images/s`);
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
// Shared machines make these numbers noisy: the load average says how busy it was.
const load = loadavg()[0]!.toFixed(1);
const section = [
  '## Data pipeline',
  '',
  `\`pnpm bench data\` on ${new Date().toISOString().slice(0, 10)}, ${cpus().length} x ${cpu}, Node ${process.version}, load average ${load} at the end.`,
  `Real CIFAR-100 training split (45,000 images), batch ${batchSize}, normalize -> resize 64x64 -> random_flip -> random_zoom(0.2, 0.2),`,
  `training mode (shuffled, augmented); median of ${timed} batches after ${warmup} warm-up batches. The pipeline runs on`,
  `the training thread, so its time per batch adds to the step time (at best ~100-400 ms per step of 128 for the reference models here, docs/reference.md).`,
  '',
  '| backend | median ms / batch | images/s | host gather ms / batch | dataset ready (s) |',
  '|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.backend} | ${r.medianMs.toFixed(1)} | ${r.imagesPerSecond.toFixed(0)} | ${r.gatherMs.toFixed(2)} | ${r.loadSeconds.toFixed(2)} |`),
  ...(notes.length > 0 ? ['', ...notes.map((n) => `- ${n}`)] : []),
  '',
].join('\n');

if (!values['no-write']) {
  const previous = existsSync(values.out!) ? readFileSync(values.out!, 'utf8') : '# Benchmarks\n';
  // Replace only our own section, so other benchmarks' results stay.
  const pattern = /## Data pipeline\n[\s\S]*?(?=\n## |$)/;
  const next = pattern.test(previous) ? previous.replace(pattern, section) : `${previous.trimEnd()}\n\n${section}`;
  writeFileSync(values.out!, next);
  console.log(`wrote the "Data pipeline" section of ${values.out}`);
} else {
  console.log(section);
}
if (rows.length === 0) process.exit(1);
