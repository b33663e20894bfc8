export { main, reportError, EXIT, type MainOptions } from './main.ts';
export { builtinRegistries } from '@tessera/builtins';
export { defineCommand, setOption, UsageError, type Command, type CommandContext, type OptionSpec } from './command.ts';
export { commands, type CommandName } from './commands/index.ts';
