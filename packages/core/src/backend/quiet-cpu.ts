import * as tf from '@tensorflow/tfjs';

/**
 * The cpu backend's first write prints a banner urging to install tfjs-node. Tessera chooses its
 * backend itself (selectBackend tries tfjs-node first and says why it passed over it), and the
 * cpu backend also serves as TF.js's default before any selection (a model built by `exp summary`,
 * tests), so the banner is only noise: every cpu backend instance is created without it.
 */
export function quietCpuBackend(): void {
  const quiet = <T>(backend: T): T => {
    (backend as { firstUse?: boolean }).firstUse = false;
    return backend;
  };
  // The engine's own tables: tf.findBackend would create an instance, tf.removeBackend dispose one.
  const engine = tf.engine() as unknown as {
    registry: Record<string, unknown>;
    registryFactory: Record<string, { factory: () => unknown } | undefined>;
  };
  const entry = engine.registryFactory['cpu'];
  if (!entry) return;
  // An instance made before this module loaded (an op ran already) is silenced in place; TF.js
  // makes a new one each time it initialises its backends, so the factory is wrapped too.
  if (engine.registry['cpu']) quiet(engine.registry['cpu']);
  const factory = entry.factory;
  entry.factory = () => {
    const made = factory();
    return made instanceof Promise ? made.then(quiet) : quiet(made);
  };
}
quietCpuBackend();
