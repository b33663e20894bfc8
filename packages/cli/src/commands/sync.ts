import { basename, resolve } from 'node:path';
import { defineCommand, UsageError } from '../command.ts';

export default defineCommand({
  name: 'sync',
  summary: 'Send local runs to an MLflow server (what it is missing: params, metrics, tags, artifacts, status)',
  description:
    'Replays local runs into MLflow. Each run is compared with its MLflow copy and only what MLflow lacks is sent: ' +
    'missing params, every metric value (per key and step) it has no value for, tags that differ, datasets, ' +
    'artifacts that are missing or whose content (sha256) MLflow was not sent, the LoggedModels of an ended run\'s final and best models (once each), then the status and end time. A run is created in MLflow ' +
    'once (one sync per run at a time; a race with another host is resolved to one run) and found again by id afterwards, so syncing twice changes nothing. Without RUN, every local run that ' +
    'this server is missing something of (sweep runs and their trials under runs/sweeps/ included, each sweep run ' +
    'before its trials so they nest under it): runs recorded while it was down (their outbox is not empty) or never ' +
    'sent to it. Credentials come from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN.',
  positionals: [{ name: 'RUN', variadic: true, optional: true, description: 'Run ids or run directories (default: every run MLflow is missing something of)' }],
  options: {
    uri: { type: 'string', placeholder: 'URI', description: 'MLflow tracking server, http(s)://host:port (default: $MLFLOW_TRACKING_URI)' },
    experiment: { type: 'string', placeholder: 'NAME', description: 'Only the local runs of this experiment (without RUN)' },
    'mlflow-experiment': {
      type: 'string',
      placeholder: 'NAME',
      description: 'MLflow experiment for runs never sent there (default: tracking.experiment, $MLFLOW_EXPERIMENT_NAME, else the experiment name)',
    },
    'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the local run store (default: $TESSERA_RUNS_DIR, else runs/ in the repository)' },
  },
  examples: [
    ['exp sync', 'Send every run MLflow is missing something of to $MLFLOW_TRACKING_URI'],
    ['exp sync 20261129-031502-ab12cd --uri http://127.0.0.1:5000', 'Send one run to a given server'],
  ],
  async run({ positionals, options }, context) {
    const uri = options.uri ?? process.env.MLFLOW_TRACKING_URI;
    if (!uri) throw new UsageError('no MLflow server: give --uri URI or set MLFLOW_TRACKING_URI', 'sync');
    const { MlflowClient } = await import('@tessera/mlflow');
    const { defaultRunsRoot, findRunDir, listRunDirs, runsToSync, syncRun } = await import('@tessera/core');
    const client = MlflowClient.fromEnv(process.env, { trackingUri: uri });
    const root = options['runs-dir'] ? resolve(context.cwd, options['runs-dir']) : defaultRunsRoot(context.cwd);
    const dirs =
      positionals.length > 0
        ? await Promise.all(
            positionals.map((run) =>
              findRunDir(resolve(context.cwd, run), root)
                .catch(() => findRunDir(run, root))
                // A sweep trial's run, in its attempt's own store under <root>/sweeps/.
                .catch(async (error: unknown) => (await listRunDirs({ root })).find((dir) => basename(dir) === run) ?? Promise.reject(error)),
            ),
          )
        : await runsToSync(client.trackingUri, { root, ...(options.experiment ? { experiment: options.experiment } : {}) });
    if (dirs.length === 0) {
      context.stdout.write(`Nothing to sync: ${client.trackingUri} has every local run under ${root}\n`);
      return 0;
    }
    let failed = 0;
    for (const dir of dirs) {
      try {
        const result = await syncRun(dir, { client, ...(options['mlflow-experiment'] ? { experiment: options['mlflow-experiment'] } : {}) });
        const { sent } = result;
        const parts = [
          sent.params && `${sent.params} params`,
          sent.metrics && `${sent.metrics} metric values`,
          sent.tags && `${sent.tags} tags`,
          sent.inputs && `${sent.inputs} datasets`,
          sent.artifacts && `${sent.artifacts} artifacts`,
          sent.models && `${sent.models} LoggedModel${sent.models > 1 ? 's' : ''}`,
          sent.status && 'status',
        ].filter(Boolean);
        const what = parts.length > 0 ? `sent ${parts.join(', ')}` : 'already up to date';
        context.stdout.write(`${result.localRunId} -> MLflow run ${result.mlflowRunId}${result.created ? ' (created)' : ''}: ${what}\n`);
        if (result.conflicts.length > 0) {
          context.stderr.write(`  note: MLflow keeps other values for params ${result.conflicts.join(', ')} (params cannot change there)\n`);
        }
      } catch (error) {
        failed++;
        context.stderr.write(`exp sync: ${dir}: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
    if (failed > 0) context.stderr.write(`${failed} of ${dirs.length} run(s) not synced (see above); what was sent stays sent, and exp sync again sends the rest\n`);
    return failed > 0 ? 1 : 0;
  },
});
