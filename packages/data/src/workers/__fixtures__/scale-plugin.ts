import type * as tf from '@tensorflow/tfjs';
import type { Registries, Transform, TransformEntry } from '@tessera/core/registry';

/** A plugin with a transform of its own (x * factor), for the batch-worker tests: TypeScript, as users write plugins. */
const scaleEntry: TransformEntry<{ factor: number }> = {
  type: 'test_scale',
  description: 'x * factor (a test plugin).',
  params: { type: 'object', additionalProperties: false, required: ['factor'], properties: { factor: { type: 'number' } } },
  create: ({ factor }): Transform => ({
    random: false,
    outputShape: (shape) => shape,
    apply: (x: tf.Tensor4D) => x.mul(factor),
  }),
};

export function register(registries: Registries): void {
  registries.transforms.register(scaleEntry);
}
