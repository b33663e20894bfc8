import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, OVERRIDE_PREFIX, parseOverride, redactSecrets } from '@tessera/core';

/**
 * Hydra's multirun (`exp run FILE -m --set a=1,2 --set b=x,y`): every override whose value is a
 * comma-separated list is swept, the cross product is a grid sweep (the same machinery as
 * `exp sweep`, with a sweep run as the parent of its trials), and the other overrides apply to
 * every trial. The sweep is written as a sweep file under the run store, so running the same
 * command again resumes it, and the file is the sweep run's `sweep.yaml` artifact.
 */
export interface Multirun {
  /** The generated sweep file. */
  file: string;
  name: string;
  /** Overrides for every trial (the ones with one value). */
  baseOverrides: string[];
  /** Swept path -> values, in command-line order (the last one varies fastest). */
  swept: Record<string, unknown[]>;
}

export interface MultirunOptions {
  /** Root of the run store; the file goes to `<runsDir>/sweeps/<name>/multirun.yaml`. */
  runsDir: string;
  /** The metric the sweep ranks trials by (default val_loss). */
  metric?: string;
  goal?: 'minimize' | 'maximize';
}

/** Splits `a,b,[c,d],"e,f"` at the commas outside brackets, braces and quotes. */
export function splitSweepValues(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote && text[i - 1] !== '\\') quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{' || c === '(') depth++;
    else if (c === ']' || c === '}' || c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((part) => part.trim());
}

export function planMultirun(experiment: string, overrides: readonly string[], options: MultirunOptions): Multirun {
  const baseOverrides: string[] = [];
  const swept: Record<string, unknown[]> = {};
  for (const argument of overrides) {
    const equals = argument.indexOf('=');
    const values = equals < 0 ? [] : splitSweepValues(argument.slice(equals + 1));
    if (values.length < 2) {
      baseOverrides.push(argument);
      continue;
    }
    const key = argument.slice(0, equals);
    if (/^[+~]/.test(key)) {
      throw new ConfigError({
        location: { file: `${OVERRIDE_PREFIX}${argument}`, line: 1, col: 1 },
        message: `a swept key cannot be added or deleted (${key[0] === '~' ? '~' : '+'}): sweep an existing key`,
        hint: `add the key first with a single value, e.g. --set ${key}=${values[0]}, then sweep it in the experiment file`,
      });
    }
    // Parsed as --set parses it, so `1e-3` is a number and `adam` a string, as in a single run.
    const parsed = values.map((value) => parseOverride(`${key}=${value}`).value);
    if (Object.hasOwn(swept, key)) swept[key]!.push(...parsed);
    else swept[key] = parsed;
  }
  if (Object.keys(swept).length === 0) {
    throw new ConfigError({
      message: '-m (multirun) needs at least one --set KEY=A,B with several comma-separated values',
      hint: 'e.g. exp run FILE -m --set train.optimizer.learning_rate=0.01,0.003',
    });
  }
  const identity = createHash('sha256').update(JSON.stringify([experiment, baseOverrides, swept, options.metric ?? '', options.goal ?? ''])).digest('hex').slice(0, 8);
  const name = `${basename(experiment, extname(experiment))}-multirun-${identity}`;
  const dir = join(options.runsDir, 'sweeps', name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'multirun.yaml');
  const text = stringify({
    name,
    // The command as documentation, secrets masked (the run store keeps no secret).
    description: redactSecrets(`exp run -m: ${[...baseOverrides, ...Object.entries(swept).map(([k, v]) => `${k}=${v.map((x) => JSON.stringify(x)).join(',')}`)].join(' ')}`),
    experiment,
    method: 'grid',
    metric: { name: options.metric ?? 'val_loss', goal: options.goal ?? 'minimize' },
    parameters: Object.fromEntries(Object.entries(swept).map(([key, values]) => [key, { values: [...new Set(values)] }])),
  });
  writeFileSync(file, `# Written by exp run -m (Hydra's multirun); the same command resumes this sweep.\n${text}`);
  return { file, name, baseOverrides, swept };
}
