import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { didYouMean } from '../registry/registry.ts';
import { listRunDirs, readSyncStates } from './sync.ts';
import { readMetrics, readRunMeta, type RunMeta } from './local-store.ts';
import type { ParamValue } from './tracker.ts';

/** One line of `exp runs`: a local run, its last metrics and whether MLflow has all of it. */
export interface RunRow {
  meta: RunMeta;
  dir: string;
  /** Epochs recorded (the last metrics step). */
  epochs: number;
  /** The last value of each metric. */
  last: Record<string, number>;
  /** The run's params (params.json). */
  params: Record<string, ParamValue>;
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
    const records = await readMetrics(dir, 'metrics.jsonl', (torn) => {
      if (!reported) options.warn?.(`warning: ${torn.file}:${torn.line}: ignored a torn line (${JSON.stringify(torn.text)}); the next resume of run ${meta.runId} repairs it`);
      reported = true;
    });
    const last: Record<string, number> = {};
    for (const record of records) for (const [key, value] of Object.entries(record)) if (typeof value === 'number' && key !== 'step') last[key] = value;
    const mlflow = Object.fromEntries(
      Object.entries(await readSyncStates(dir)).map(([uri, state]) => [uri, state.pending || !state.runId ? ('pending' as const) : ('synced' as const)]),
    );
    const params = JSON.parse(await readFile(join(dir, 'params.json'), 'utf8').catch(() => '{}')) as Record<string, ParamValue>;
    rows.push({ meta, dir, epochs: records.at(-1)?.step ?? 0, last, params, mlflow });
  }
  // Oldest first to the millisecond (run ids sort by the second only).
  return rows.sort((a, b) => a.meta.startTime.localeCompare(b.meta.startTime) || a.meta.runId.localeCompare(b.meta.runId));
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

/**
 * A value of a run by name, as `--sort`, `--where` and `--columns` name them: a metric's last
 * value (`val_loss`), a param (`params.train.optimizer.learning_rate`, or the bare param key when
 * no metric has that name), or a field of the run (`status`, `experiment`, `run_name`, `epochs`, `start`).
 */
export function runValue(row: RunRow, key: string): ParamValue | undefined {
  if (key === 'status') return row.meta.status;
  if (key === 'experiment') return row.meta.experiment;
  if (key === 'run_name' || key === 'name') return row.meta.runName;
  if (key === 'run' || key === 'id') return row.meta.runId;
  if (key === 'epochs') return row.epochs;
  if (key === 'start') return row.meta.startTime;
  if (key.startsWith('params.') && row.params[key.slice(7)] !== undefined) return row.params[key.slice(7)];
  if (key.startsWith('metrics.')) return row.last[key.slice(8)];
  return row.last[key] ?? row.params[key];
}

/** Every name a row answers to (for did-you-mean). */
function knownKeys(rows: readonly RunRow[]): string[] {
  const keys = new Set(['status', 'experiment', 'run_name', 'run', 'epochs', 'start']);
  for (const row of rows) {
    for (const key of Object.keys(row.last)) keys.add(key);
    for (const key of Object.keys(row.params)) keys.add(key);
  }
  return [...keys];
}

function unknownKey(key: string, rows: readonly RunRow[], option: string): ConfigError {
  const guess = didYouMean(key.replace(/^(params|metrics)\./, ''), knownKeys(rows));
  return new ConfigError({
    location: { file: `--${option} ${key}`, line: 1, col: 1 },
    message: `no run has a metric, param or field "${key}"`,
    ...(guess ? { hint: `did you mean "${guess}"?` } : {}),
  });
}

export interface RunFilter {
  key: string;
  op: '<' | '<=' | '>' | '>=' | '=' | '!=';
  value: string;
}

/** Parses `val_loss<3.5`, `status=FINISHED`, `params.train.optimizer.type != adam`. */
export function parseRunFilter(text: string): RunFilter {
  const match = /^\s*([^<>=!\s]+)\s*(<=|>=|!=|==|=|<|>)\s*(.+?)\s*$/.exec(text);
  if (!match) {
    throw new ConfigError({
      location: { file: `--where ${text}`, line: 1, col: 1 },
      message: 'expected KEY OP VALUE with OP one of < <= > >= = !=',
      hint: "e.g. --where 'val_loss<3.5' --where status=FINISHED",
    });
  }
  const op = match[2] === '==' ? '=' : (match[2] as RunFilter['op']);
  return { key: match[1]!, op, value: match[3]!.replace(/^(['"])(.*)\1$/, '$2') };
}

function compare(a: ParamValue, b: ParamValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const [x, y] = [Number(a), Number(b)];
  if (a !== '' && b !== '' && Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

export interface RunQuery {
  where?: readonly string[];
  /** A key to sort by; `KEY:desc` (or `-KEY`) for descending; rows without it go last. */
  sort?: string;
}

/** The rows that pass every filter, sorted; an unknown key is a located error with a did-you-mean. */
export function queryRuns(rows: readonly RunRow[], query: RunQuery): RunRow[] {
  const filters = (query.where ?? []).map(parseRunFilter);
  for (const filter of filters) if (rows.length > 0 && !rows.some((row) => runValue(row, filter.key) !== undefined)) throw unknownKey(filter.key, rows, 'where');
  let out = rows.filter((row) =>
    filters.every((f) => {
      const value = runValue(row, f.key);
      if (value === undefined) return false;
      const c = compare(value, f.value);
      return f.op === '<' ? c < 0 : f.op === '<=' ? c <= 0 : f.op === '>' ? c > 0 : f.op === '>=' ? c >= 0 : f.op === '=' ? c === 0 : c !== 0;
    }),
  );
  if (query.sort) {
    const descending = query.sort.startsWith('-') || /:desc$/.test(query.sort);
    const key = query.sort.replace(/^[-+]/, '').replace(/:(asc|desc)$/, '');
    if (rows.length > 0 && !rows.some((row) => runValue(row, key) !== undefined)) throw unknownKey(key, rows, 'sort');
    out = [...out].sort((a, b) => {
      const [x, y] = [runValue(a, key), runValue(b, key)];
      if (x === undefined || y === undefined) return x === undefined ? (y === undefined ? 0 : 1) : -1;
      return descending ? compare(y, x) : compare(x, y);
    });
  }
  return out;
}

/**
 * Sweep runs with their trials under them (`├─`/`└─`), in the rows' order; a trial whose parent
 * was filtered out stands on its own line.
 */
function asTree(rows: readonly RunRow[]): { row: RunRow; prefix: string }[] {
  const ids = new Set(rows.map((row) => row.meta.runId));
  const children = new Map<string, RunRow[]>();
  for (const row of rows) {
    const parent = row.meta.parentRunId;
    if (parent && ids.has(parent)) children.set(parent, [...(children.get(parent) ?? []), row]);
  }
  const out: { row: RunRow; prefix: string }[] = [];
  for (const row of rows) {
    if (row.meta.parentRunId && ids.has(row.meta.parentRunId)) continue;
    out.push({ row, prefix: '' });
    const kids = children.get(row.meta.runId) ?? [];
    kids.forEach((kid, i) => out.push({ row: kid, prefix: i === kids.length - 1 ? '\u2514\u2500 ' : '\u251c\u2500 ' }));
  }
  return out;
}

function formatCell(value: ParamValue | undefined): string {
  if (value === undefined) return '-';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  return String(value);
}

/** An aligned table, sweep trials under their sweep run, with extra columns (`--columns`) of params or metrics. */
export function formatRunsTable(rows: RunRow[], options: { columns?: readonly string[] } = {}): string {
  for (const key of options.columns ?? []) if (rows.length > 0 && !rows.some((row) => runValue(row, key) !== undefined)) throw unknownKey(key, rows, 'columns');
  const extra: [string, (row: RunRow) => string][] = (options.columns ?? []).map((key) => [key.toUpperCase(), (row) => formatCell(runValue(row, key))]);
  const columns: [string, (row: RunRow) => string][] = [COLUMNS[0]!, ['NAME', (row) => row.meta.runName], ...COLUMNS.slice(1, -1), ...extra, COLUMNS.at(-1)!];
  const tree = asTree(rows);
  const cells = [columns.map(([title]) => title), ...tree.map(({ row, prefix }) => columns.map(([, cell], i) => (i === 0 ? prefix : '') + cell(row)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) => line.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
