// bench/.venv: Python with tensorflow-cpu and Keras 3, for the benchmarks that run Keras side by
// side with Tessera (train, data). Created on first use from the wheel `pnpm setup:tensorflow`
// cached, else from PyPI.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheRoot } from '../../packages/core/src/registry/cache.ts';

const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));

export function ensureBenchVenv(): { python: string } | { error: string } {
  const venv = join(benchDir, '.venv');
  const python = join(venv, 'bin', 'python');
  const tfVersion = process.env.TESSERA_TF_VERSION ?? '2.19.1';
  if (!existsSync(python)) {
    console.log(`bench: creating ${venv} with Keras 3 and tensorflow-cpu ${tfVersion} (once)`);
    const wheels = join(cacheRoot(), 'wheels');
    // Reuse the wheel `pnpm setup:tensorflow` downloaded; pip fetches it (and caches it there) otherwise.
    const wheel = existsSync(wheels) ? readdirSync(wheels).find((f) => f.startsWith(`tensorflow_cpu-${tfVersion}-`)) : undefined;
    const steps = [
      ['python3', ['-m', 'venv', venv]],
      [python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', wheel ? join(wheels, wheel) : `tensorflow-cpu==${tfVersion}`, 'keras', 'numpy']],
    ] as const;
    for (const [command, args] of steps) {
      const result = spawnSync(command, [...args], { stdio: 'inherit' });
      if (result.status !== 0) return { error: `\`${command} ${args.join(' ')}\` failed` };
    }
  }
  return { python };
}
