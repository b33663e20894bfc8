import { resolve } from 'node:path';
import { defineCommand, setOption, UsageError, type CommandContext } from '../command.ts';
import { abortOnSignals, stopDeadlineSeconds } from '../interrupt.ts';
import { checkRegistrationNames, registerRun, runsRoot } from '../models.ts';

function integerOption(name: string, value: string | undefined, minimum: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < minimum) throw new UsageError(`--${name} expects an integer >= ${minimum}, got "${value}"`, 'run');
  return Number(value);
}

/** `--tag KEY=VALUE` arguments as tags; keys follow MLflow's rules, so a bad one fails here, not mid-run. */
export function tagOptions(values: readonly string[] | undefined): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const tags: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf('=');
    const key = equals < 0 ? value : value.slice(0, equals);
    if (equals < 0 || !/^[\p{L}\p{N}_.\-:/ ]{1,250}$/u.test(key)) {
      throw new UsageError(`--tag expects KEY=VALUE with a key of letters, digits, _ - . : / or spaces, got "${value}"`, 'run');
    }
    tags[key] = value.slice(equals + 1);
  }
  return tags;
}

/**
 * `exp run --register NAME` registers in MLflow once the run finishes: without a server to
 * register in (MLFLOW_TRACKING_URI, the experiment's tracking.uri, or for --resume the server the
 * run was recorded in) it is refused now, not after hours of training.
 */
async function assertMlflowConfigured(
  file: string | undefined,
  resume: string | undefined,
  runsDir: string | undefined,
  overrides: string[],
  registries: import('@tessera/core').Registries,
  context: CommandContext,
): Promise<void> {
  if (process.env.MLFLOW_TRACKING_URI) return;
  const core = await import('@tessera/core');
  if (file) {
    // Loading the file reports its mistakes (located, exit 2) as the run itself would.
    if (core.loadValidatedExperiment(resolve(context.cwd, file), registries, { overrides }).config.tracking?.uri) return;
  } else if (resume) {
    const root = await runsRoot(context, runsDir);
    const runDir = await core.findRunDir(resolve(context.cwd, resume), root).catch(() => core.findRunDir(resume, root)).catch(() => undefined);
    if (!runDir || Object.keys(await core.readSyncStates(runDir)).length > 0) return; // a missing run: the resume reports it
  }
  throw new UsageError('--register NAME needs an MLflow server to register in: set MLFLOW_TRACKING_URI (or tracking.uri in the experiment), e.g. the URL `exp ui` prints while it runs', 'run');
}

/** Exit codes beyond the framework's 0/1/2: a run stopped by SIGINT/SIGTERM exits like a shell's Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

/**
 * A trial of a sweep (its controller sets TESSERA_PARENT_PID) stops like a signalled run when its
 * controller dies: a controller killed with SIGKILL takes its trials with it instead of leaving
 * them training as orphans.
 */
function watchParent(isAlive: (pid: number) => boolean, stop: (reason: string) => void): NodeJS.Timeout | undefined {
  const parent = Number(process.env.TESSERA_PARENT_PID);
  if (!Number.isInteger(parent) || parent <= 0) return undefined;
  const watch = setInterval(() => {
    if (!isAlive(parent)) stop(`the sweep process that started this trial (pid ${parent}) is gone`);
  }, 1000);
  watch.unref();
  return watch;
}

export default defineCommand({
  name: 'run',
  summary: 'Train an experiment (or resume a stopped run) and record it',
  description:
    'Loads and validates the experiment, picks the backend, builds the data pipeline and the model, and trains ' +
    'with a progress bar, recording params, per-epoch metrics, the resolved config, seed, git commit and a ' +
    'checkpoint per epoch in runs/<experiment>/<run-id>/ (or $TESSERA_RUNS_DIR). Ctrl-C finishes the current ' +
    'step, writes a checkpoint, marks the run KILLED and exits 130; `--resume RUN` continues it exactly. ' +
    'A NaN or infinite loss stops the run as FAILED (exit 1).',
  positionals: [
    { name: 'FILE', optional: true, description: 'Experiment YAML file (omit with --resume)' },
    {
      name: 'OVERRIDE',
      optional: true,
      variadic: true,
      description: 'Hydra-style overrides after FILE, the same as --set: KEY=VALUE, +KEY=VALUE (add), ++KEY=VALUE (add or set), ~KEY (delete)',
    },
  ],
  options: {
    set: setOption,
    multirun: {
      type: 'boolean',
      short: 'm',
      description:
        'Hydra\'s multirun: overrides with comma-separated values (--set a=1,2 --set b=x,y) run as a grid sweep of their cross ' +
        'product, with a sweep run as the parent of the trials (the same machinery as exp sweep; the same command resumes it)',
    },
    metric: {
      type: 'string',
      placeholder: 'NAME[:GOAL]',
      description: 'With -m: the per-epoch metric that ranks the trials and its goal, e.g. val_accuracy:maximize (default: val_loss:minimize)',
    },
    parallel: { type: 'string', placeholder: 'N', description: 'With -m: trials at once (default 1)' },
    backend: { type: 'string', placeholder: 'NAME', description: 'auto, tensorflow-gpu, tensorflow, wasm or cpu (same as --set backend=NAME)' },
    seed: { type: 'string', placeholder: 'N', description: 'Run seed (same as --set seed=N)' },
    epochs: { type: 'string', placeholder: 'N', description: 'Number of epochs (same as --set train.epochs=N; with --resume, extends the run)' },
    resume: { type: 'string', placeholder: 'RUN', description: 'Continue a run (its id or directory) from its last checkpoint, with its saved config' },
    'runs-dir': { type: 'string', placeholder: 'DIR', description: 'Root of the local run store (default: $TESSERA_RUNS_DIR, else runs/ in the repository)' },
    'parent-run': {
      type: 'string',
      placeholder: 'RUN',
      description: 'Local run id of the run this one belongs to (a sweep\'s run); MLflow nests this run under it',
    },
    tag: { type: 'string', multiple: true, placeholder: 'KEY=VALUE', description: 'Tag the run from its start (repeatable; wins over tracking.tags)' },
    register: { type: 'string', placeholder: 'NAME', description: 'When the run finishes, register its model in MLflow\'s Model Registry as a new version of NAME' },
    alias: { type: 'string', placeholder: 'ALIAS', description: 'With --register: point this alias (e.g. champion) at the new version' },
  },
  examples: [
    ['exp run experiments/smoke.yaml', 'Train the smoke experiment (seconds)'],
    ['exp run experiments/smoke.yaml --epochs 1 --set train.batch_size=64 --backend cpu', 'One epoch, a bigger batch, the plain JavaScript backend'],
    ['exp run --resume 20261129-031502-ab12cd', 'Continue a stopped run from its last checkpoint'],
    ['exp run experiments/smoke.yaml train.epochs=1 ++tracking.run_name=quick ~train.callbacks', 'Overrides written as in Hydra'],
    [
      'exp run experiments/smoke.yaml -m --set train.optimizer.learning_rate=0.01,0.003 --set model.layers.1.units=16,32',
      'Hydra\'s multirun: a 2 x 2 grid sweep with a parent run (ranked by val_loss)',
    ],
    ['exp run experiments/mixer.yaml --register mixer-cifar100 --alias candidate', 'Train, then register the model in MLflow'],
  ],
  async run({ positionals, options }, context) {
    const file = positionals[0];
    for (const extra of positionals.slice(1)) {
      if (!extra.includes('=') && !extra.startsWith('~')) {
        throw new UsageError(`unexpected argument "${extra}": overrides after FILE are KEY=VALUE, +KEY=VALUE, ++KEY=VALUE or ~KEY`, 'run');
      }
    }
    const overrides = [...positionals.slice(1), ...(options.set ?? [])];
    if (options.multirun) return multirun(file, overrides, options, context);
    if (options.metric !== undefined || options.parallel !== undefined) throw new UsageError('--metric and --parallel go with -m (multirun)', 'run');
    if (!file && !options.resume) throw new UsageError('an experiment FILE is required (or --resume RUN)', 'run');
    if (file && options.resume) throw new UsageError('give FILE or --resume RUN, not both: a resumed run uses its saved config', 'run');
    if (options.resume && (overrides.length || options.seed !== undefined)) {
      throw new UsageError('--resume trains the run\'s saved config: only --epochs and --backend may be given with it', 'run');
    }
    if (options.alias && !options.register) throw new UsageError('--alias goes with --register NAME', 'run');
    if (options.register) checkRegistrationNames(options.register, options.alias, 'run');
    const seed = integerOption('seed', options.seed, 0);
    const epochs = integerOption('epochs', options.epochs, 1);
    const tags = tagOptions(options.tag);
    const { runExperiment, NonFiniteLossError, isProcessAlive } = await import('@tessera/core');
    const registries = await context.registries(file ? resolve(context.cwd, file) : undefined, options.set ?? []);
    if (options.register) await assertMlflowConfigured(file, options.resume, options['runs-dir'], overrides, registries, context);
    // SIGINT/SIGTERM abort the run (it finishes the step, checkpoints and ends KILLED); a second
    // one (interrupt.ts) means "now", and so does the stop deadline (TESSERA_STOP_DEADLINE, 60 s)
    // that a supervisor relies on: the process exits at once, keeping the last epoch checkpoint.
    // The only exit outside `main`'s return value: nothing else can stop a training step mid-way.
    const exitNow = (why: string) => {
      context.stdout.write(`${why}: exiting now; the run keeps its last checkpoint\n`);
      process.exit(EXIT_INTERRUPTED);
    };
    const stop = abortOnSignals({
      again: (signal) => exitNow(`${signal} again`),
      deadline: { seconds: stopDeadlineSeconds(), expired: (seconds) => exitNow(`still stopping after ${seconds} s`) },
    });
    const parentWatch = watchParent(isProcessAlive, stop.abort);
    try {
      const summary = await runExperiment(file ? resolve(context.cwd, file) : undefined, {
        registries,
        signal: stop.signal,
        output: context.stdout,
        overrides,
        ...(options.backend !== undefined ? { backend: options.backend } : {}),
        ...(seed !== undefined ? { seed } : {}),
        ...(epochs !== undefined ? { epochs } : {}),
        ...(options.resume !== undefined ? { resume: options.resume } : {}),
        ...(options['runs-dir'] !== undefined ? { runsDir: resolve(context.cwd, options['runs-dir']) } : {}),
        ...(options['parent-run'] !== undefined ? { parentRunId: options['parent-run'] } : {}),
        ...(tags ? { tags } : {}),
      });
      if (options.register && summary.status === 'FINISHED') {
        await registerRun(summary.runDir, options.register, context, { which: 'final', alias: options.alias, runsDir: options['runs-dir'] });
      } else if (summary.status === 'FINISHED') {
        const id = summary.runId;
        context.stdout.write(`Use its model: exp evaluate ${id} | exp predict ${id} --input IMAGE | exp serve ${id} | exp register ${id} NAME (docs/models.md)\n`);
      } else if (options.register) {
        context.stderr.write(`exp run: not registering ${options.register}: the run ended ${summary.status}\n`);
      }
      return summary.status === 'KILLED' ? EXIT_INTERRUPTED : 0;
    } catch (error) {
      if (!(error instanceof NonFiniteLossError)) throw error;
      context.stderr.write(`exp run: training diverged: ${error.message}\nThe run is marked FAILED; its metrics and last checkpoint are kept.\n`);
      return 1;
    } finally {
      stop.release();
      clearInterval(parentWatch);
    }
  },
});

/** `exp run FILE -m ...`: the overrides' cross product as a grid sweep, run by `exp sweep`'s code. */
async function multirun(
  file: string | undefined,
  overrides: string[],
  options: { metric?: string | undefined; parallel?: string | undefined; resume?: string | undefined; backend?: string | undefined; 'runs-dir'?: string | undefined; seed?: string | undefined; epochs?: string | undefined },
  context: CommandContext,
): Promise<number> {
  if (!file) throw new UsageError('-m needs an experiment FILE', 'run');
  if (options.resume) throw new UsageError('-m and --resume do not go together: run the same -m command again to resume its sweep', 'run');
  const [metric, goal] = (options.metric ?? 'val_loss:minimize').split(':');
  if (goal !== undefined && goal !== 'minimize' && goal !== 'maximize') throw new UsageError(`--metric: the goal after ":" is minimize or maximize, got "${goal}"`, 'run');
  const { defaultRunsRoot } = await import('@tessera/core');
  const { planMultirun } = await import('@tessera/sweeps');
  const experiment = resolve(context.cwd, file);
  const runsDir = options['runs-dir'] ? resolve(context.cwd, options['runs-dir']) : defaultRunsRoot(experiment);
  const shorthands = [
    ...(options.seed !== undefined ? [`seed=${options.seed}`] : []),
    ...(options.epochs !== undefined ? [`train.epochs=${options.epochs}`] : []),
  ];
  const plan = planMultirun(experiment, [...overrides, ...shorthands], { runsDir, metric: metric!, ...(goal ? { goal } : {}) });
  const sizes = Object.entries(plan.swept).map(([key, values]) => `${values.length} ${key}`);
  context.stdout.write(`Multirun: a grid over ${sizes.join(' x ')} (sweep file ${plan.file})\n`);
  const sweep = (await import('./sweep.ts')).default;
  return (
    (await sweep.run(
      {
        positionals: [plan.file],
        options: {
          set: plan.baseOverrides,
          'dry-run': false,
          parallel: options.parallel,
          'max-trials': undefined,
          backend: options.backend,
          state: undefined,
          'runs-dir': runsDir,
          executor: 'local',
          queue: undefined,
        },
      },
      context,
    )) ?? 0
  );
}
