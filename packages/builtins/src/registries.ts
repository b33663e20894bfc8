import { createRegistries, registerCombinators, registerEngine, type Registries } from '@tessera/core';
import { registerData } from '@tessera/data';
import { registerModels } from '@tessera/models';

/**
 * The composition root: registries with everything built in (core's combinators and engine
 * entries, the model primitives, the datasets and transforms). The CLI and programs both use it.
 */
export function builtinRegistries(): Registries {
  const registries = createRegistries();
  registerCombinators(registries);
  registerEngine(registries);
  registerModels(registries);
  registerData(registries);
  return registries;
}
