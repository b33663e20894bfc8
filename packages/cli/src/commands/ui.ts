import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { defineCommand, UsageError } from '../command.ts';
import { abortOnSignals } from '../interrupt.ts';

/** MLflow 3's UI opens on its GenAI view unless told otherwise; this query opens the training runs. */
const TRAINING_VIEW = 'workflowType=machine_learning';

export const MLFLOW_MISSING =
  'MLflow is not installed. Install it into .venv with:\n' +
  '  corepack pnpm setup:mlflow      (pip-installs the pinned mlflow; needs Python 3.10+ with venv, e.g. apt-get install python3-venv)\n' +
  'or point MLFLOW_BIN at an `mlflow` executable, or set MLFLOW_TRACKING_URI to a running MLflow server.';

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolvePort) => {
    server.once('error', () => resolvePort(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolvePort(true)));
  });
}

export default defineCommand({
  name: 'ui',
  summary: 'Open the local runs in the MLflow UI (starts MLflow on runs/.mlflow/ and keeps it in sync)',
  description:
    'Starts an MLflow tracking server on 127.0.0.1 whose store (sqlite database and artifacts) lives beside the local ' +
    'runs, in <runs>/.mlflow/, sends it every local run it lacks (as exp sync does: only what is missing, so starting it ' +
    'again is quick), prints its URL, and keeps sending new and still-running runs while it is open. Ctrl-C stops the ' +
    'server; the store stays for the next time. With MLFLOW_TRACKING_URI (or --uri) set, runs already go to that server: ' +
    'exp ui then only prints its URL. MLflow comes from `corepack pnpm setup:mlflow` (.venv), $MLFLOW_BIN or PATH.',
  positionals: [],
  options: {
    port: { type: 'string', placeholder: 'PORT', description: 'Port to listen on (default: 5000, else a free one)' },
    uri: { type: 'string', placeholder: 'URI', description: 'An MLflow server to print the URL of instead of starting one (default: $MLFLOW_TRACKING_URI)' },
    experiment: { type: 'string', placeholder: 'NAME', description: 'Print the URL of this experiment (default: every local experiment)' },
    interval: { type: 'string', placeholder: 'SECONDS', description: 'How often to look for new or changed runs (default: 3)' },
    'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the local run store (default: $TESSERA_RUNS_DIR, else runs/ in the repository)' },
  },
  examples: [
    ['exp ui', 'Start MLflow on runs/.mlflow/ at http://127.0.0.1:5000 and keep it in sync until Ctrl-C'],
    ['exp ui --port 5001 --experiment smoke', 'Another port; print the smoke experiment\u2019s URL'],
    ['MLFLOW_TRACKING_URI=http://mlflow:5000 exp ui', 'Print the URL of the server runs already go to'],
  ],
  async run({ options }, context) {
    const { MlflowClient, findMlflowBinary, startMlflowServer } = await import('@tessera/mlflow');
    const { LOCAL_UI_DIR, defaultRunsRoot, listLocalRuns, markTrainingExperiments, syncChangedRuns } = await import('@tessera/core');
    const root = options['runs-dir'] ? resolve(context.cwd, options['runs-dir']) : defaultRunsRoot(context.cwd);
    const out = (text: string) => void context.stdout.write(`${text}\n`);
    const port = options.port === undefined ? undefined : Number(options.port);
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new UsageError(`--port: expected a port number (1-65535), got "${options.port}"`, 'ui');
    const interval = options.interval === undefined ? 3 : Number(options.interval);
    if (!(interval > 0)) throw new UsageError(`--interval: expected a number of seconds > 0, got "${options.interval}"`, 'ui');

    const experimentUrls = async (client: InstanceType<typeof MlflowClient>) => {
      const names = options.experiment ? [options.experiment] : [...new Set((await listLocalRuns({ root })).map((row) => row.meta.experiment))];
      for (const name of names) {
        const experiment = await client.getExperimentByName(name).catch(() => undefined);
        if (experiment) out(`  ${name}: ${client.trackingUri}/#/experiments/${experiment.experimentId}/runs?${TRAINING_VIEW}`);
        else if (options.experiment) out(`  ${name}: not on this server yet (no run of it was sent there)`);
      }
    };

    const remote = options.uri ?? process.env.MLFLOW_TRACKING_URI;
    if (remote) {
      const client = MlflowClient.fromEnv(process.env, { trackingUri: remote });
      out(`MLflow UI: ${client.trackingUri}  (runs go there directly: MLFLOW_TRACKING_URI${options.uri ? ' / --uri' : ''} is set)`);
      await experimentUrls(client).catch((error: unknown) => out(`  (could not list its experiments: ${(error as Error).message})`));
      out('Runs recorded while it was unreachable: exp sync. In MLflow 3 pick "Model training" at the top left if the GenAI view opens.');
      return 0;
    }

    const binary = findMlflowBinary();
    if (!binary) {
      context.stderr.write(`exp ui: ${MLFLOW_MISSING}\n`);
      return 1;
    }
    let chosen = port ?? 5000;
    if (port === undefined && !(await portIsFree(chosen))) {
      const { freePort } = await import('@tessera/mlflow');
      chosen = await freePort();
      out(`note: port 5000 is taken; using ${chosen} (choose one with --port)`);
    }
    const store = join(root, LOCAL_UI_DIR);
    out(`Starting MLflow (${binary}) on 127.0.0.1:${chosen}, store ${store} ...`);
    const server = await startMlflowServer({ binary, dir: store, port: chosen });
    const client = MlflowClient.fromEnv({}, { trackingUri: server.uri, timeoutMs: 60_000 });

    let stopping = false;
    let wake: (() => void) | undefined;
    // Ctrl-C (or SIGTERM) stops the server. The handlers stay until it is stopped: a wrapper's
    // relayed copy of the same keypress (pnpm, tsx) must not end the process half-way.
    const interrupt = abortOnSignals({
      first: () => {
        out('\nStopping MLflow (the store stays in place; exp ui opens it again).');
        stopping = true;
        wake?.();
      },
      again: () => {},
    });
    const syncStarted = new Map<string, number>();
    const pass = async () => {
      const result = await syncChangedRuns(client, root, { syncStarted });
      for (const { localRunId, mlflowRunId, created } of result.synced) if (created) out(`synced ${localRunId} -> MLflow run ${mlflowRunId}`);
      for (const { dir, error } of result.failed) context.stderr.write(`exp ui: ${dir}: ${error} (retried on the next pass)\n`);
      return result;
    };
    try {
      const first = await pass();
      await markTrainingExperiments(client);
      out(`MLflow UI: ${server.uri}  (${first.synced.length} run(s) synced from ${root})`);
      await experimentUrls(client);
      out(`Watching ${root} for new runs every ${interval} s. In MLflow 3, pick "Model training" at the top left if the GenAI view opens. Ctrl-C to stop.`);
      while (!stopping) {
        await new Promise<void>((resolveWait) => {
          wake = resolveWait;
          setTimeout(resolveWait, interval * 1000);
        });
        if (stopping) break;
        const result = await pass().catch((error: unknown) => {
          context.stderr.write(`exp ui: sync pass failed: ${(error as Error).message}\n`);
          return undefined;
        });
        if (result && result.synced.some((r) => r.created)) await markTrainingExperiments(client).catch(() => undefined);
      }
    } finally {
      await server.stop();
      interrupt.release();
    }
    return 0;
  },
});
