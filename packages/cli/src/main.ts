import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { distance } from 'fastest-levenshtein';
import type { ConfigError, Registries } from '@tessera/core';
import { commandHelp, GLOBAL_OPTIONS, table, UsageError, type Command, type CommandContext, type Output } from './command.ts';
import { commands, type CommandName } from './commands/index.ts';
import { renderConfigError, styleFor } from './style.ts';
import { redacting } from './redacting-output.ts';

export interface MainOptions {
  stdout?: Output;
  stderr?: Output;
  cwd?: string;
  /** The registries commands see; the built-in ones by default (tests pass stand-ins). */
  registries?: () => Registries | Promise<Registries>;
}

/** Exit codes: 0 ok, 1 an unexpected error, 2 bad input (a config error or a bad command line). */
export const EXIT = { ok: 0, failure: 1, badInput: 2 } as const;

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Runs the `exp` command line and returns its exit code; never calls process.exit (but a second Ctrl-C of `exp run`). */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const stdout = redacting(options.stdout ?? process.stdout);
  const stderr = redacting(options.stderr ?? process.stderr);
  const end = argv.indexOf('--') < 0 ? argv.length : argv.indexOf('--');
  const isGlobal = (arg: string, index: number) => index < end && (arg === '--debug' || arg === '--help' || arg === '-h');
  const debug = argv.slice(0, end).includes('--debug');
  const help = argv.slice(0, end).some((arg) => arg === '--help' || arg === '-h');
  const rest = argv.filter((arg, index) => !isGlobal(arg, index));
  const name = rest[0];

  let registries: Promise<Registries> | undefined;
  const context: CommandContext = {
    stdout,
    stderr,
    cwd: options.cwd ?? process.cwd(),
    debug,
    registries: async (file, overrides) => {
      const built = await (registries ??= Promise.resolve(options.registries ? options.registries() : import('@tessera/builtins').then((m) => m.builtinRegistries())));
      const { loadExperimentPlugins, loadPlugins, projectPluginRefs } = await import('@tessera/core');
      if (file !== undefined) await loadExperimentPlugins(built, file, overrides);
      else await loadPlugins(built, projectPluginRefs(context.cwd));
      return built;
    },
  };
  try {
    if (name === undefined || name.startsWith('-')) {
      if (name === '--version' || name === '-v') {
        stdout.write(`${VERSION}\n`);
        return EXIT.ok;
      }
      if (name !== undefined && !help) throw new UsageError(`unknown option "${name}"`);
      stdout.write(await mainHelp());
      return EXIT.ok;
    }
    // `exp help` and `exp help <command>`, as in git and npm.
    if (name === 'help') return await main(rest[1] === undefined ? ['--help'] : [rest[1], '--help'], options);
    const command = await loadCommand(name);
    if (help) {
      stdout.write(commandHelp(command));
      return EXIT.ok;
    }
    const args = parseCommandLine(command, rest.slice(1));
    return (await command.run(args, context)) ?? EXIT.ok;
  } catch (error) {
    // A usage error before a command is known is the whole line's, not a command's.
    return reportError(error, error instanceof UsageError && !error.command ? '' : (name ?? ''), context);
  }
}

async function loadCommand(name: string): Promise<Command> {
  if (!Object.hasOwn(commands, name)) {
    const { didYouMean } = await import('@tessera/core');
    const hint = didYouMean(name, Object.keys(commands));
    throw new UsageError(`unknown command "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; commands: ${Object.keys(commands).join(', ')}`);
  }
  try {
    return (await commands[name as CommandName]()).default as unknown as Command;
  } catch (error) {
    throw new Error(`the "${name}" command failed to load: ${(error as Error).message}`, { cause: error });
  }
}

async function mainHelp(): Promise<string> {
  const rows = await Promise.all(
    Object.keys(commands).map(async (name): Promise<[string, string]> => {
      try {
        return [name, (await loadCommand(name)).summary];
      } catch (error) {
        return [name, `(unavailable: ${(error as Error).message.split('\n')[0]})`];
      }
    }),
  );
  return [
    `exp ${VERSION}: declarative deep-learning experiments (Tessera)`,
    'Usage: exp <command> [arguments] [options]',
    `Commands:\n${table(rows)}`,
    `Global options:\n${table([...GLOBAL_OPTIONS, ['-v, --version', 'Print the version']])}`,
    [
      'Examples:',
      '  $ exp run experiments/smoke.yaml',
      '  $ exp validate experiments/*.yaml',
      '  $ exp config experiments/smoke.yaml --set train.epochs=1',
      '  $ exp blocks --kind transform',
    ].join('\n'),
    'Run "exp help <command>" (or "exp <command> --help") for its arguments, options and examples.',
  ].join('\n\n') + '\n';
}

/** util.parseArgs over the command's option table, with positionals checked against its spec. */
function parseCommandLine(command: Command, args: string[]): { positionals: string[]; options: Record<string, never> } {
  const optionConfig: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(command.options)) {
    optionConfig[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.default !== undefined ? { default: spec.default } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: optionConfig, allowPositionals: true, strict: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = (error as Error).message;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
      const near = nearestOption(flag, Object.keys(command.options));
      throw new UsageError(`unknown option "${flag}"${near ? ` (did you mean "--${near}"?)` : ''}`, command.name);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /--([\w-]+)/.exec(message)?.[1];
      const spec = flag ? command.options[flag] : undefined;
      throw new UsageError(spec?.type === 'boolean' ? `option "--${flag}" takes no value` : `option "--${flag}" needs a value${spec?.placeholder ? ` (${spec.placeholder})` : ''}`, command.name);
    }
    throw new UsageError(message, command.name);
  }
  const positionals = parsed.positionals;
  const specs = command.positionals;
  const variadic = specs.some((p) => p.variadic);
  const required = specs.filter((p) => !p.optional);
  if (positionals.length < required.length) {
    throw new UsageError(`missing ${required[positionals.length]!.name}`, command.name);
  }
  if (!variadic && positionals.length > specs.length) {
    throw new UsageError(`unexpected argument "${positionals[specs.length]}"`, command.name);
  }
  return { positionals, options: parsed.values as Record<string, never> };
}

function nearestOption(flag: string, names: string[]): string | undefined {
  const bare = flag.replace(/^-+/, '');
  return names.find((name) => name.startsWith(bare) || bare.startsWith(name)) ?? names.find((name) => distance(bare, name) <= 2);
}

function usageFailure(stderr: Output, command: string | undefined, message: string): number {
  const prefix = command ? `exp ${command}` : 'exp';
  stderr.write(`${prefix}: ${message}\nRun "${prefix} --help" for usage.\n`);
  return EXIT.badInput;
}

type ConfigErrorLike = Error & Pick<ConfigError, 'parts'> & { errors?: readonly (Pick<ConfigError, 'parts'> & { location?: unknown })[] };

// Checked by name, not instanceof, so this module need not load @tessera/core to recognise them.
function isConfigError(error: unknown): error is ConfigErrorLike {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ConfigErrors') return Array.isArray((error as ConfigErrorLike).errors);
  return error.name === 'ConfigError' && typeof (error as ConfigErrorLike).parts === 'function';
}

/** Prints a failure the way users need it and returns the exit code. */
export function reportError(error: unknown, command: string, context: Pick<CommandContext, 'stderr' | 'cwd' | 'debug'>): number {
  const { stderr, cwd, debug } = context;
  const style = styleFor(stderr);
  if (error instanceof UsageError) return usageFailure(stderr, error.command ?? command, error.message);
  if (isConfigError(error)) {
    const errors = error.name === 'ConfigErrors' ? error.errors! : [error];
    stderr.write(`${errors.map((e) => renderConfigError(e, cwd, style)).join('\n')}\n`);
    if (errors.length > 1) stderr.write(`${errors.length} errors\n`);
    if (debug) stderr.write(`${describeStack(error)}\n`);
    return EXIT.badInput;
  }
  const prefix = command ? `exp ${command}` : 'exp';
  // A corrupt or missing data file is bad input, like a bad config: its message names the file.
  if (error instanceof Error && error.name === 'DataError' && !debug) {
    stderr.write(`${style.red(`${prefix}: ${error.message.split('\n')[0]}`)}\n`);
    return EXIT.badInput;
  }
  if (debug) {
    stderr.write(`${prefix}: ${describeStack(error)}\n`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    stderr.write(`${style.red(`${prefix}: ${message.split('\n')[0]}`)}\n${style.dim('(run with --debug for the stack)')}\n`);
  }
  return EXIT.failure;
}

function describeStack(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : String(current));
    current = current instanceof Error ? current.cause : undefined;
    if (current !== undefined) parts.push('caused by:');
  }
  return parts.join('\n');
}
