import { createRequire } from 'node:module';
const core = await import('../../packages/core/src/index.ts');
const { registerData } = await import('../../packages/data/src/index.ts');
const tf = createRequire(new URL('../../packages/core/package.json', import.meta.url))('@tensorflow/tfjs');
await core.selectBackend('wasm', () => {});
const registries = registerData(core.createRegistries());
const root = '/root/.cache/tessera/bench/cifar100-png';
for (const [workers, transforms] of [[0, []], [0, [{ type: 'random_flip' }]], [1, []], [1, [{ type: 'random_flip' }]]] as const) {
  const ds = await registries.datasets.get('image_folder').create({ dir: root + '/all', image_size: [32, 32], cache_dir: root + '/cache', transforms, workers }, { configDir: root, seed: 1, registries, log: () => {} });
  let n = 0; const t0 = performance.now();
  for await (const b of ds.batches('train', { batchSize: 128, training: true, seed: 1, epoch: 0 })) { n += b.y.shape[0]; tf.dispose([b.x, b.y]); if (n >= 128 * 40) break; }
  const s = (performance.now() - t0) / 1000;
  console.log(`workers ${workers} transforms ${transforms.length}: ${Math.round(n / s)} img/s`);
}
process.exit(0);
