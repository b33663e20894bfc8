import { relative, resolve } from 'node:path';
import type { SweepSpec, SweepState } from '@tessera/sweeps';
import { defineCommand, UsageError } from '../command.ts';
import { abortOnSignals, stopDeadlineSeconds } from '../interrupt.ts';
import { LiveBlock } from '../live.ts';
import { expCommand } from '../self.ts';
import { printSweepStatus, queueUrl } from './worker.ts';

/** A sweep stopped by Ctrl-C exits like `exp run` does; `exp sweep FILE` again resumes it. */
const EXIT_INTERRUPTED = 130;

function integerOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${name} expects an integer >= 1, got "${value}"`, 'sweep');
  return Number(value);
}

export default defineCommand({
  name: 'sweep',
  summary: 'Search hyperparameters: run (or resume) a sweep file',
  description:
    'Runs the trials of a sweep file (experiments/sweeps/*.yaml): grid, random or bayes (TPE) search over ' +
    'dotted paths of a base experiment, each trial an `exp run` child process with --set overrides, at most ' +
    '`parallel` at once, weak trials stopped early by the median rule, ASHA or hyperband. The trial table is ' +
    'saved after every change in <runs>/sweeps/<name>/state.json, next to each trial\'s run records; running ' +
    'the same command again resumes: finished and pruned trials are kept, interrupted ones continue from their ' +
    'last checkpoint. Ctrl-C stops the running trials (they checkpoint) and exits 130.',
  positionals: [
    { name: 'FILE', description: 'Sweep YAML file (or `status` to show a sweep on a queue)' },
    { name: 'ID', optional: true, description: 'With `status`: the sweep\'s name (needs --queue)' },
  ],
  options: {
    set: {
      type: 'string',
      multiple: true,
      placeholder: 'KEY=VALUE',
      description: 'Override a value of the base experiment in every trial, before the trial\'s own (repeatable; part of the sweep\'s identity, so resume with the same ones)',
    },
    'dry-run': { type: 'boolean', default: false, description: 'Check the sweep and print the planned trials; run nothing' },
    parallel: { type: 'string', placeholder: 'N', description: 'Trials at once (overrides the file\'s parallel)' },
    'max-trials': { type: 'string', placeholder: 'N', description: 'Trial budget (overrides max_trials; raise it to extend a sweep)' },
    backend: { type: 'string', placeholder: 'NAME', description: 'Backend for every trial (passed to exp run --backend)' },
    state: { type: 'string', placeholder: 'FILE', description: 'Trial table to use (default: <runs>/sweeps/<name>/state.json)' },
    'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the local run store (default: $TESSERA_RUNS_DIR, else runs/ in the repository)' },
    executor: { type: 'string', placeholder: 'local|queue', default: 'local', description: 'local: exp run children here; queue: trials go to `exp worker`s through Redis (docs/distributed.md)' },
    queue: { type: 'string', placeholder: 'URL', description: 'With --executor queue or status: redis://HOST:PORT/DB (default: $TESSERA_QUEUE)' },
  },
  examples: [
    ['exp sweep experiments/sweeps/smoke-grid.yaml', 'A 2 x 2 grid over the smoke experiment, two trials at a time'],
    ['exp sweep experiments/sweeps/smoke-grid.yaml --dry-run', 'Check the sweep and list its trials without running any'],
    ['exp sweep experiments/sweeps/my-search.yaml --max-trials 60', 'Resume a random or bayes search with a larger budget'],
    ['exp sweep experiments/sweeps/my-search.yaml --set train.epochs=5', 'A cheaper search: every trial trains 5 epochs'],
    ['exp sweep experiments/sweeps/my-search.yaml --executor queue --queue redis://queue.lan:6379/0', 'Trials run on `exp worker`s on other machines (docs/distributed.md)'],
    ['exp sweep status my-search --queue redis://queue.lan:6379/0', 'Trials, attempts and workers of a sweep on a queue'],
  ],
  async run({ positionals, options }, context) {
    if (positionals[0] === 'status' && positionals.length > 1) return printSweepStatus(positionals[1], options.queue, context);
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" (only \`exp sweep status NAME\` takes two)`, 'sweep');
    if (options.executor !== 'local' && options.executor !== 'queue') throw new UsageError(`--executor expects local or queue, got "${options.executor}"`, 'sweep');
    const sweeps = await import('@tessera/sweeps');
    const file = resolve(context.cwd, positionals[0]!);
    const registries = await context.registries(await sweepExperimentFile(file), options.set ?? []);
    const parallel = integerOption('parallel', options.parallel);
    const maxTrials = integerOption('max-trials', options['max-trials']);
    const show = (f: string) => {
      const shown = relative(context.cwd, f);
      return shown && !shown.startsWith('..') ? shown : f;
    };

    if (options['dry-run']) {
      const { spec, notes } = sweeps.loadSweep(file, { registries, overrides: options.set ?? [] });
      for (const note of notes) context.stdout.write(`note: ${note}\n`);
      const plan = sweeps.planTrials({ ...spec, ...(maxTrials !== undefined ? { maxTrials } : {}) });
      const budget = maxTrials ?? spec.maxTrials;
      context.stdout.write(
        `ok ${show(file)}: ${spec.method} search over ${spec.parameters.length} parameter(s) of ${show(spec.experiment)}, ` +
          `${budget} trial(s), ${parallel ?? spec.parallel} at a time, ${spec.objective.goal} ${spec.objective.metric}` +
          (spec.earlyTerminate ? `, early termination: ${spec.earlyTerminate.type}` : '') +
          '\n',
      );
      plan.forEach((trial, i) => context.stdout.write(`  ${sweeps.trialId(i)}  ${trial.overrides.join(' ')}\n`));
      if (spec.method === 'bayes' && budget > plan.length) {
        context.stdout.write(`  ... then ${budget - plan.length} trial(s) chosen by TPE from the results\n`);
      }
      return 0;
    }

    // A deadline, so that one SIGTERM always ends the controller (a queue that went away, a trial
    // that does not stop): its trials' own deadline, plus the time to record them. Local trials
    // watch this process and stop when it exits.
    const interrupt = abortOnSignals({
      first: () => context.stderr.write('\nexp sweep: stopping the running trials (they checkpoint); run the same command to resume\n'),
      deadline: {
        seconds: stopDeadlineSeconds() + 30,
        expired: (seconds) => {
          context.stderr.write(`exp sweep: still stopping after ${seconds} s: exiting; run the same command to resume\n`);
          process.exit(EXIT_INTERRUPTED);
        },
      },
    });
    const live = LiveBlock.forOutput(context.stdout);
    try {
      const common = {
        registries,
        overrides: options.set ?? [],
        ...(options['runs-dir'] !== undefined ? { runsDir: resolve(context.cwd, options['runs-dir']) } : {}),
        ...(options.state !== undefined ? { statePath: resolve(context.cwd, options.state) } : {}),
        ...(parallel !== undefined ? { parallel } : {}),
        ...(maxTrials !== undefined ? { maxTrials } : {}),
        ...(options.backend !== undefined ? { runArgs: ['--backend', options.backend] } : {}),
        // On a terminal the trial table stays live at the bottom; elsewhere, plain progress lines.
        log: live ? (line: string) => live.log(line) : (line: string) => context.stdout.write(`${line}\n`),
        ...(live ? { onUpdate: (state: SweepState, spec: SweepSpec) => live.update(sweeps.formatSweepTable(state, spec)) } : {}),
        signal: interrupt.signal,
      };
      const result =
        options.executor === 'queue'
          ? await (await import('@tessera/sweeps/queue')).runQueueSweepFile(file, { ...common, url: await queueUrl(options.queue, 'sweep') })
          : await sweeps.runSweepFile(file, { ...common, command: expCommand() });
      live?.close();
      context.stdout.write(`\n${sweeps.formatSweepTable(result.state, result.spec)}\n`);
      context.stdout.write(`Trial table: ${show(result.statePath)}\n`);
      const again = sweeps.reproduceCommand(result.state, result.spec, context.cwd);
      const best = sweeps.bestTrial(result.state, result.spec);
      if (again) context.stdout.write(`Best: ${best!.id}; rerun it with: ${again}\n`);
      // The sweep's run stands for its best trial (tag best_run_id): one command registers the winner.
      if (again && result.state.runId && best?.runId) {
        context.stdout.write(`Register its model in MLflow with: exp register ${result.state.runId} NAME\n`);
      }
      if (result.interrupted) return EXIT_INTERRUPTED;
      const failed = result.state.trials.filter((t) => t.state === 'FAILED');
      if (failed.length > 0) {
        context.stderr.write(`${failed.length} trial(s) failed; see their reason in the table file and output.log in their run directory\n`);
      }
      return result.state.trials.length > 0 && failed.length === result.state.trials.length ? 1 : 0;
    } finally {
      live?.close();
      interrupt.release();
    }
  },
});

/**
 * The experiment a sweep file names (relative to the sweep file), so that its plugins load
 * before the sweep is validated; undefined when the file does not name one (loadSweep says so).
 */
async function sweepExperimentFile(sweepFile: string): Promise<string | undefined> {
  const { parseYamlFile } = await import('@tessera/core');
  const { dirname } = await import('node:path');
  const value = parseYamlFile(sweepFile).value as Record<string, unknown> | null;
  return typeof value?.experiment === 'string' ? resolve(dirname(sweepFile), value.experiment) : undefined;
}
