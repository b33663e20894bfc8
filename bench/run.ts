// `pnpm bench [name ...] [-- options]`: runs bench/<name>.ts for each name (all of them when no
// name is given), each in its own process so that one benchmark's backend and memory do not
// colour the next. Options after the names are passed to every benchmark.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts' && !file.endsWith('.test.ts'))
  .map((file) => file.slice(0, -'.ts'.length))
  .sort();

const args = process.argv.slice(2).filter((arg) => arg !== '--');
const names = args.filter((arg) => !arg.startsWith('-') && available.includes(arg));
const unknown = args.filter((arg) => !arg.startsWith('-') && !available.includes(arg) && !args[args.indexOf(arg) - 1]?.startsWith('--'));
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark ${unknown.map((n) => `"${n}"`).join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
const options = args.filter((arg) => !names.includes(arg));

let failed = 0;
for (const name of names.length > 0 ? names : available) {
  console.log(`\n==> bench ${name}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(benchDir, `${name}.ts`), ...options], { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`bench ${name} failed (exit ${result.status ?? result.signal})`);
    failed++;
  }
}
process.exit(failed > 0 ? 1 : 0);
