// A sweep controller process for the tests: `node --import tsx controller-main.ts`, configured
// by TEST_CONTROLLER (JSON: {spec, url, statePath, leaseMs, runsDir?}); with runsDir, the sweep's
// own run is recorded in that local store (experiment "fake"), never in MLflow.
import { runQueueSweep } from '../controller.ts';
import type { SweepSpec } from '../../spec.ts';

const { spec, url, statePath, leaseMs, runsDir } = JSON.parse(process.env.TEST_CONTROLLER!) as {
  spec: SweepSpec;
  url: string;
  statePath: string;
  leaseMs: number;
  runsDir?: string;
};
const tracking = runsDir ? { tracking: { runsDir, experiment: 'fake', tracking: {}, createTracker: () => undefined } } : {};
const result = await runQueueSweep(spec, { url, statePath, leaseMs, ...tracking, log: (line) => console.log(line) });
console.log(`done: ${result.state.trials.map((t) => t.state).join(' ')}`);
