// One phase of the image-folder benchmark, in its own process so that its peak RSS is its own.
// Prints `RESULT {json}`. Run by bench/data.ts:
//   generate <root> <cifar-dir>           50,000 PNGs (CIFAR-100 train) in <root>/all/<class>/, 10,000 hard links in <root>/subset/
//   decode <dir> <threads> [cache]        first pass: list + decode every image on <threads> decode threads (into the shard cache when given)
//   cached <dir> <cache> <batch> [flip]   a later run: open the cache, then one training epoch of batches (random_flip in the workers with `flip`)
import { existsSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [phase, ...args] = process.argv.slice(2);
const rssMiB = () => process.resourceUsage().maxRSS / 1024;
const report = (result: Record<string, unknown>) => console.log(`RESULT ${JSON.stringify({ ...result, peakRssMiB: Math.round(rssMiB()) })}`);

if (phase === 'generate') {
  const [root, cifarDir] = args as [string, string];
  const { createRequire } = await import('node:module');
  // sharp is a dependency of @tessera/data, not of the repository root.
  const sharp = createRequire(join(import.meta.dirname, '..', '..', 'packages', 'data', 'package.json'))('sharp') as typeof import('sharp');
  const { CIFAR100, loadCifar } = await import('../../packages/data/src/datasets/cifar.ts');
  const { cacheRoot } = await import('../../packages/core/src/index.ts');
  const done = join(root, '.complete');
  if (!existsSync(done)) {
    const data = await loadCifar(CIFAR100, { dir: cifarDir, labelMode: 'fine', cacheDir: cacheRoot(), download: false, cacheDecoded: true, log: () => {} });
    const names = data.labelNames ?? Array.from({ length: 100 }, (_, i) => `class_${i}`);
    const set = data.train;
    const perClass = new Array<number>(100).fill(0);
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < set.count) {
        const i = next++;
        const label = set.labels[i]!;
        const k = perClass[label]!++;
        const hwc = Buffer.alloc(32 * 32 * 3);
        const base = set.offset + i * set.stride;
        for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = set.bytes[base + c * 1024 + p]!;
        const dir = join(root, 'all', names[label]!);
        mkdirSync(dir, { recursive: true });
        const file = join(dir, `${String(k).padStart(4, '0')}.png`);
        await sharp(hwc, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(file);
        if (k < 100) {
          mkdirSync(join(root, 'subset', names[label]!), { recursive: true });
          linkSync(file, join(root, 'subset', names[label]!, `${String(k).padStart(4, '0')}.png`));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    writeFileSync(done, `${set.count}\n`);
    console.log(`wrote ${set.count} PNGs in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  report({ phase });
} else if (phase === 'decode') {
  const [dir, threads, cacheDir] = args as [string, string, string | undefined];
  const { scanImageFolder } = await import('../../packages/data/src/datasets/images/scan.ts');
  const { decodeFileList } = await import('../../packages/data/src/datasets/images/cache.ts');
  const started = performance.now();
  const scanned = scanImageFolder(dir, { path: ['data', 'dir'] });
  const listed = performance.now();
  const decoded = await decodeFileList(scanned.train, { height: 32, width: 32, channels: 3, fit: 'fill', interpolation: 'bilinear' }, {
    ...(cacheDir ? { cacheDir } : {}),
    onBadImage: 'skip',
    threads: Number(threads),
    log: () => {},
    progress: () => {},
    name: 'bench',
  });
  const seconds = (performance.now() - started) / 1000;
  report({ phase, images: decoded.set.count, seconds, listSeconds: (listed - started) / 1000, imagesPerSecond: decoded.set.count / seconds });
} else if (phase === 'cached') {
  const [dir, cacheDir, batch, flip] = args as [string, string, string, string | undefined];
  const core = await import('../../packages/core/src/index.ts');
  const { registerData } = await import('../../packages/data/src/index.ts');
  await core.selectBackend('wasm', () => {});
  const registries = registerData(core.createRegistries());
  const started = performance.now();
  const dataset = await registries.datasets
    .get('image_folder')
    .create({ dir, image_size: [32, 32], cache_dir: cacheDir, transforms: flip ? [{ type: 'random_flip' }] : [] }, { configDir: dir, seed: 1, registries, log: () => {} });
  const opened = performance.now();
  let images = 0;
  const { createRequire } = await import('node:module');
  // tfjs is a dependency of the packages, not of the repository root: load core's copy (the same instance).
  const tf = createRequire(join(import.meta.dirname, '..', '..', 'packages', 'core', 'package.json'))('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');
  for await (const b of dataset.batches('train', { batchSize: Number(batch), training: true, seed: 1, epoch: 0 })) {
    images += b.y.shape[0];
    tf.dispose([b.x, b.y]);
  }
  const epochSeconds = (performance.now() - opened) / 1000;
  report({ phase, images, openSeconds: (opened - started) / 1000, epochSeconds, imagesPerSecond: images / epochSeconds });
} else {
  console.error(`unknown phase ${phase}`);
  process.exit(2);
}
