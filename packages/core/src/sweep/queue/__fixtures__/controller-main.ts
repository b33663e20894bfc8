// A sweep controller process for the tests: `node --import tsx controller-main.ts`, configured
// by TEST_CONTROLLER (JSON: {spec, url, statePath, leaseMs}).
import { runQueueSweep } from '../controller.ts';
import type { SweepSpec } from '../../spec.ts';

const { spec, url, statePath, leaseMs } = JSON.parse(process.env.TEST_CONTROLLER!) as { spec: SweepSpec; url: string; statePath: string; leaseMs: number };
const result = await runQueueSweep(spec, { url, statePath, leaseMs, log: (line) => console.log(line) });
console.log(`done: ${result.state.trials.map((t) => t.state).join(' ')}`);
