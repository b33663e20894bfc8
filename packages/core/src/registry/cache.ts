import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where Tessera keeps what it downloads or derives once (datasets, decoded images, MLflow
 * models, the benchmark's Python): TESSERA_CACHE, else ~/.cache/tessera.
 */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.TESSERA_CACHE || join(homedir(), '.cache', 'tessera');
}
