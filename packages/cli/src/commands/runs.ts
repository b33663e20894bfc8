import { resolve } from 'node:path';
import { defineCommand } from '../command.ts';

export default defineCommand({
  name: 'runs',
  summary: 'List local runs: id, status, epochs, last metrics, MLflow sync state',
  description:
    'Lists the runs in the local run store, oldest first, with their status, the number of epochs recorded, the ' +
    'last loss, validation loss and accuracy, test accuracy, and whether an MLflow server is missing part of ' +
    'the run (send it with exp sync).',
  positionals: [],
  options: {
    experiment: { type: 'string', placeholder: 'NAME', description: 'Only the runs of this experiment' },
    json: { type: 'boolean', description: 'One JSON object per run (meta, epochs, last metrics, mlflow) instead of the table' },
    'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the local run store (default: $TESSERA_RUNS_DIR, else runs/ in the repository)' },
  },
  examples: [
    ['exp runs', 'Every local run'],
    ['exp runs --experiment smoke --json', 'The smoke runs as JSON lines'],
  ],
  async run({ options }, context) {
    const { defaultRunsRoot, formatRunsTable, listLocalRuns } = await import('@tessera/core');
    const root = options['runs-dir'] ? resolve(context.cwd, options['runs-dir']) : defaultRunsRoot(context.cwd);
    const rows = await listLocalRuns({ root, warn: (message) => void context.stderr.write(`${message}\n`), ...(options.experiment ? { experiment: options.experiment } : {}) });
    if (options.json) {
      for (const { meta, dir, epochs, last, mlflow } of rows) context.stdout.write(`${JSON.stringify({ ...meta, dir, epochs, last, mlflow })}\n`);
      return 0;
    }
    if (rows.length === 0) {
      context.stdout.write(`No runs under ${root}${options.experiment ? ` for experiment "${options.experiment}"` : ''}\n`);
      return 0;
    }
    context.stdout.write(`${formatRunsTable(rows)}\n`);
    return 0;
  },
});
