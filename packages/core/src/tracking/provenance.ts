import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

/** What a run records about the code that produced it. */
export interface Provenance {
  gitCommit?: string;
  /** True when tracked files differ from the commit (the numbers may not be reproducible from it). */
  gitDirty?: boolean;
  node: string;
  platform: string;
  packages: Record<string, string>;
}

function git(args: string[], cwd: string): string | undefined {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const json = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version?: string };
    return json.version;
  } catch {
    return undefined;
  }
}

export function collectProvenance(cwd = process.cwd()): Provenance {
  const commit = git(['rev-parse', 'HEAD'], cwd);
  const status = commit ? git(['status', '--porcelain', '--untracked-files=no'], cwd) : undefined;
  const packages: Record<string, string> = { '@tensorflow/tfjs': tf.version.tfjs };
  try {
    const own = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    packages['@tessera/core'] = own.version;
  } catch {
    // Bundled or relocated: the version is simply not recorded.
  }
  for (const name of ['@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node']) {
    const version = packageVersion(name);
    if (version) packages[name] = version;
  }
  return {
    ...(commit ? { gitCommit: commit, gitDirty: status !== undefined && status !== '' } : {}),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    packages,
  };
}
