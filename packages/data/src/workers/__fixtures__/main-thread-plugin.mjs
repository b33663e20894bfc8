import { isMainThread } from 'node:worker_threads';

// A plugin that loads on the training thread but throws in a batch worker (as one that needs
// something only the main thread has would), for the batch-worker fallback test.
if (!isMainThread) throw new Error('this plugin loads only on the main thread');

export function register(registries) {
  registries.transforms.register({
    type: 'test_triple',
    description: 'x * 3 (a test plugin that cannot load in a worker).',
    params: { type: 'object', additionalProperties: false, properties: {} },
    create: () => ({ random: false, outputShape: (shape) => shape, apply: (x) => x.mul(3) }),
  });
}
