import { loadExperiment } from '@tessera/core';
const t = performance.now();
try { loadExperiment(process.argv[2]!); } catch (e) { console.log((e as Error).message.slice(0, 200)); }
console.log('seconds', ((performance.now() - t) / 1000).toFixed(2), 'rss MB', (process.memoryUsage().rss / 1e6).toFixed(0));
