/**
 * The real browser for UI tests: Debian's Chromium (scripts/setup-chromium.sh), driven headless by
 * playwright-core (Playwright's own browser download is not reachable from CI). Like MLflow and
 * Redis in the other integration tests: missing locally, the tests skip with the reason; missing
 * under CI=true, they fail.
 */
import { accessSync, constants } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

export interface ChromiumForTests {
  executable: string | undefined;
  skipReason: string | undefined;
}

/** $CHROMIUM_BIN, else /usr/bin/chromium; under CI=true a missing one throws. */
export function locateChromiumForTests(env: NodeJS.ProcessEnv = process.env): ChromiumForTests {
  const candidates = env.CHROMIUM_BIN ? [env.CHROMIUM_BIN] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return { executable: candidate, skipReason: undefined };
    } catch {
      // try the next
    }
  }
  const reason = `no Chromium at ${candidates.join(' or ')}; run \`bash scripts/setup-chromium.sh\` (apt-get install chromium) or set CHROMIUM_BIN`;
  if (env.CI && env.CI !== 'false' && env.CI !== '0') throw new Error(`browser tests cannot run under CI: ${reason}`);
  return { executable: undefined, skipReason: reason };
}

/** Where tests leave screenshots: $TESSERA_TEST_ARTIFACTS, else <repo>/test-artifacts/ (git-ignored). */
export function testArtifactsDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = join(env.TESSERA_TEST_ARTIFACTS ? resolve(env.TESSERA_TEST_ARTIFACTS) : join(REPO_ROOT, 'test-artifacts'), name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
