import type { Registries } from '@tessera/core';

/* ------------------------------------------------------------------------------------------ *
 * What a command is: a typed option table, help text and a `run` function. The framework       *
 * (main.ts) parses argv with node's util.parseArgs from the table and renders --help from it,  *
 * so a command file only declares and runs. Commands import heavy modules inside `run`.       *
 * ------------------------------------------------------------------------------------------ */

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Repeatable: the value is a list (`--set a=1 --set b=2`). */
  multiple?: boolean;
  default?: string | boolean;
  /** The value's name in help, e.g. `KEY=VALUE` (string options only). */
  placeholder?: string;
  description: string;
}

export interface PositionalSpec {
  name: string;
  description: string;
  /** Takes one or more values (`FILE...`). */
  variadic?: boolean;
  optional?: boolean;
}

type OptionValue<O extends OptionSpec> = O['type'] extends 'boolean'
  ? O['multiple'] extends true ? boolean[] : boolean
  : O['multiple'] extends true ? string[] : O extends { default: string } ? string : string | undefined;

export type OptionValues<O extends Record<string, OptionSpec>> = { [K in keyof O]: OptionValue<O[K]> };

export interface Output {
  write(text: string): unknown;
}

/** What a running command gets besides its arguments. */
export interface CommandContext {
  stdout: Output;
  stderr: Output;
  cwd: string;
  debug: boolean;
  /**
   * The built-in registries (or the test's), built on first use, with the plugins of the
   * project (tessera.config.yaml at or above `file`'s folder, else the working directory) and,
   * given an experiment `file`, the plugins it lists. A bad plugin is a located ConfigError.
   */
  registries(file?: string, overrides?: readonly string[]): Promise<Registries>;
}

export interface Command<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  /** One line for `exp --help`. */
  summary: string;
  /** A paragraph or two for `exp <name> --help`. */
  description?: string;
  positionals: PositionalSpec[];
  options: O;
  /** `[command line, what it does]` pairs shown under Examples. */
  examples: [string, string][];
  /** Returns the exit code (0 when omitted). Throw ConfigError for bad config input. */
  run(args: { positionals: string[]; options: OptionValues<O> }, context: CommandContext): Promise<number | void>;
}

/** Declares a command with its option types inferred from the table. */
export function defineCommand<const O extends Record<string, OptionSpec>>(command: Command<O>): Command<O> {
  return command;
}

/** Thrown for a bad command line (unknown option, missing argument): printed with a usage hint, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

/** The `--set` option, shared by every command that loads an experiment. */
/** `--plugin PATH` (repeatable): modules to load, relative to the working directory, besides tessera.config.yaml's. */
export const pluginOption = {
  type: 'string',
  multiple: true,
  placeholder: 'PATH',
  description: 'Also load this plugin module (repeatable; relative to the working directory), besides tessera.config.yaml\'s',
} as const satisfies OptionSpec;

/** The registries with the project's plugins and those given with --plugin. */
export async function registriesWithPlugins(context: CommandContext, plugins: readonly string[] | undefined): Promise<Registries> {
  const registries = await context.registries();
  if (plugins?.length) {
    const { loadPlugins } = await import('@tessera/core');
    await loadPlugins(registries, plugins.map((path, i) => ({ path, baseDir: context.cwd, yamlPath: ['--plugin', i] })));
  }
  return registries;
}

export const setOption = {
  type: 'string',
  multiple: true,
  placeholder: 'KEY=VALUE',
  description:
    'Override a config value after extends, before ${...} (repeatable). VALUE is YAML; ' +
    'index lists as a.b[2].c or a.b.2.c. As in Hydra: +KEY=VALUE adds a key that must not exist, ++KEY=VALUE sets it ' +
    'either way, ~KEY deletes it (~KEY=VALUE: only if it has that value).',
} as const satisfies OptionSpec;

/* ----------------------------------------- help ----------------------------------------- */

const WIDTH = 100;

function wrap(text: string, indent: number, width = WIDTH): string {
  const words = text.split(/\s+/).filter(Boolean);
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** Two aligned columns: `  left   right (wrapped)`. */
export function table(rows: [string, string][]): string {
  const left = Math.min(Math.max(...rows.map(([l]) => l.length)) + 2, 34);
  return rows
    .map(([l, r]) => {
      const pad = l.length + 2 > left ? `\n${' '.repeat(left + 2)}` : ' '.repeat(left - l.length);
      return `  ${l}${pad}${wrap(r, left + 2)}`;
    })
    .join('\n');
}

export function usageLine(command: Command): string {
  const args = command.positionals.map((p) => {
    const name = p.variadic ? `${p.name}...` : p.name;
    return p.optional ? `[${name}]` : name;
  });
  return ['exp', command.name, ...args, '[options]'].join(' ');
}

export const GLOBAL_OPTIONS: [string, string][] = [
  ['--debug', 'Show stack traces and causes for unexpected errors'],
  ['-h, --help', 'Show help'],
];

function optionLabel(name: string, spec: OptionSpec): string {
  const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}`;
  return spec.type === 'string' ? `${flag} ${spec.placeholder ?? 'VALUE'}` : flag;
}

export function commandHelp(command: Command): string {
  const sections = [`Usage: ${usageLine(command)}`, wrap(command.description ?? command.summary, 0)];
  if (command.positionals.length > 0) {
    sections.push(`Arguments:\n${table(command.positionals.map((p) => [p.variadic ? `${p.name}...` : p.name, p.description]))}`);
  }
  const options: [string, string][] = Object.entries(command.options).map(([name, spec]) => {
    const fallback = spec.default !== undefined && spec.default !== false ? ` (default: ${JSON.stringify(spec.default)})` : '';
    return [optionLabel(name, spec), `${spec.description}${fallback}`];
  });
  options.push(...GLOBAL_OPTIONS.map(([flag, text]): [string, string] => [flag.startsWith('-h') ? flag : `    ${flag}`, text]));
  sections.push(`Options:\n${table(options)}`);
  if (command.examples.length > 0) {
    sections.push(`Examples:\n${command.examples.map(([line, text]) => `  $ ${line}\n      ${wrap(text, 6)}`).join('\n')}`);
  }
  return `${sections.join('\n\n')}\n`;
}
