import { listRunDirs, readSyncStates } from './sync.ts';
import { readMetrics, readRunMeta, type RunMeta } from './local-store.ts';

/** One line of `exp runs`: a local run, its last metrics and whether MLflow has all of it. */
export interface RunRow {
  meta: RunMeta;
  dir: string;
  /** Epochs recorded (the last metrics step). */
  epochs: number;
  /** The last value of each metric. */
  last: Record<string, number>;
  /** Per tracking URI: 'synced' or 'pending' (MLflow is missing something). */
  mlflow: Record<string, 'synced' | 'pending'>;
}

/**
 * Every run of a store. A torn metrics line (a crash mid-write) costs that line only: it is
 * reported through `warn` (once per file) and the run is listed with the rest of its metrics.
 */
export async function listLocalRuns(options: { root?: string; experiment?: string; warn?: (message: string) => void } = {}): Promise<RunRow[]> {
  const rows: RunRow[] = [];
  for (const dir of await listRunDirs(options)) {
    const meta = await readRunMeta(dir);
    let reported = false;
    const records = await readMetrics(dir, (torn) => {
      if (!reported) options.warn?.(`warning: ${torn.file}:${torn.line}: ignored a torn line (${JSON.stringify(torn.text)}); the next resume of run ${meta.runId} repairs it`);
      reported = true;
    });
    const last: Record<string, number> = {};
    for (const record of records) for (const [key, value] of Object.entries(record)) if (typeof value === 'number' && key !== 'step') last[key] = value;
    const mlflow = Object.fromEntries(
      Object.entries(await readSyncStates(dir)).map(([uri, state]) => [uri, state.pending || !state.runId ? ('pending' as const) : ('synced' as const)]),
    );
    rows.push({ meta, dir, epochs: records.at(-1)?.step ?? 0, last, mlflow });
  }
  return rows;
}

const COLUMNS: [string, (row: RunRow) => string][] = [
  ['RUN', (row) => row.meta.runId],
  ['EXPERIMENT', (row) => row.meta.experiment],
  ['STATUS', (row) => row.meta.status],
  ['EPOCHS', (row) => String(row.epochs)],
  ['LOSS', (row) => row.last.loss?.toFixed(4) ?? '-'],
  ['VAL_LOSS', (row) => row.last.val_loss?.toFixed(4) ?? '-'],
  ['VAL_ACC', (row) => row.last.val_accuracy?.toFixed(4) ?? '-'],
  ['TEST_ACC', (row) => row.last.test_accuracy?.toFixed(4) ?? '-'],
  [
    'MLFLOW',
    (row) => {
      const states = Object.values(row.mlflow);
      if (states.length === 0) return '-';
      return states.includes('pending') ? 'pending (exp sync)' : 'synced';
    },
  ],
];

/** An aligned table, oldest run first. */
export function formatRunsTable(rows: RunRow[]): string {
  const cells = [COLUMNS.map(([title]) => title), ...rows.map((row) => COLUMNS.map(([, cell]) => cell(row)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) => line.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
