import { resolve } from 'node:path';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'runs',
  summary: 'List local runs: id, name, status, epochs, last metrics, MLflow sync state; filter, sort, pick columns',
  description:
    'Lists the runs in the local run store, oldest first, with their name, status, the number of epochs recorded, the ' +
    'last loss, validation loss and accuracy, test accuracy, and whether an MLflow server is missing part of ' +
    'the run (send it with exp sync). A sweep\'s run is followed by its trials, drawn as a tree. KEY names a metric ' +
    '(its last value: val_loss), a param (train.optimizer.learning_rate, or params.<key>), or status, experiment, ' +
    'run_name, epochs, start.',
  positionals: [],
  options: {
    experiment: { type: 'string', placeholder: 'NAME', description: 'Only the runs of this experiment' },
    where: {
      type: 'string',
      multiple: true,
      placeholder: 'KEY<OP>VALUE',
      description: "Only the runs where KEY compares so with VALUE, OP one of < <= > >= = != (repeatable: all must hold), e.g. --where 'val_loss<3.5'",
    },
    sort: { type: 'string', placeholder: 'KEY', description: 'Order by KEY, ascending; KEY:desc (or --sort=-KEY) for descending (runs without it last)' },
    columns: { type: 'string', placeholder: 'KEY,...', description: 'Extra columns: params or metrics, comma-separated' },
    json: { type: 'boolean', description: 'One JSON object per run (meta, epochs, last metrics, params, mlflow) instead of the table' },
    'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the local run store (default: $TESSERA_RUNS_DIR, else runs/ in the repository)' },
  },
  examples: [
    ['exp runs', 'Every local run, sweep trials under their sweep'],
    ["exp runs --where 'val_loss<3.5' --sort val_loss --columns train.optimizer.learning_rate,model.vars.embedding_dim", 'The good runs, best first, with the params that differ'],
    ['exp runs --experiment smoke --json | head -1', 'The first smoke run as a JSON line'],
  ],
  async run({ options }, context) {
    const { defaultRunsRoot, formatRunsTable, listLocalRuns, queryRuns } = await import('@tessera/core');
    const root = options['runs-dir'] ? resolve(context.cwd, options['runs-dir']) : defaultRunsRoot(context.cwd);
    const all = await listLocalRuns({ root, warn: (message) => void context.stderr.write(`${message}\n`), ...(options.experiment ? { experiment: options.experiment } : {}) });
    const rows = queryRuns(all, { ...(options.where ? { where: options.where } : {}), ...(options.sort ? { sort: options.sort } : {}) });
    const columns = options.columns?.split(',').map((c) => c.trim()).filter(Boolean) ?? [];
    if (options.json) {
      for (const { meta, dir, epochs, last, params, mlflow } of rows) context.stdout.write(`${JSON.stringify({ ...meta, dir, epochs, last, params, mlflow })}\n`);
      return 0;
    }
    if (rows.length === 0) {
      const why = all.length > 0 ? ` matching ${(options.where ?? []).join(' and ')}` : '';
      context.stdout.write(`No runs under ${root}${options.experiment ? ` for experiment "${options.experiment}"` : ''}${why}\n`);
      return 0;
    }
    context.stdout.write(`${formatRunsTable(rows, { columns })}\n`);
    return 0;
  },
});
