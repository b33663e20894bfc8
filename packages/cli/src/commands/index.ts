import type { Command } from '../command.ts';

/**
 * Every `exp` command, in the order `exp --help` lists them.
 *
 * To add a command: write `commands/<name>.ts` whose default export is `defineCommand({...})`
 * (options, help text, examples, and a `run` that imports its real work lazily, e.g.
 * `const { runExperiment } = await import('@tessera/core')`), then add ONE line here:
 *     name: () => import('./name.ts'),
 * Parsing, --help, exit codes and error printing come from the framework (main.ts).
 */
export const commands = {
  validate: () => import('./validate.ts'),
  config: () => import('./config.ts'),
  schema: () => import('./schema.ts'),
  blocks: () => import('./blocks.ts'),
  run: () => import('./run.ts'),
  doctor: () => import('./doctor.ts'),
  summary: () => import('./summary.ts'),
  export: () => import('./export.ts'),
  predict: () => import('./predict.ts'),
  evaluate: () => import('./evaluate.ts'),
  serve: () => import('./serve.ts'),
  register: () => import('./register.ts'),
  sweep: () => import('./sweep.ts'),
  worker: () => import('./worker.ts'),
  sync: () => import('./sync.ts'),
  runs: () => import('./runs.ts'),
  ui: () => import('./ui.ts'),
} satisfies Record<string, () => Promise<{ default: Command<any> }>>;

export type CommandName = keyof typeof commands;
