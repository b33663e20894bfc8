import { defineCommand } from '../command.ts';
import { modelOptions, registerRun, whichOption } from '../models.ts';
import { tagOptions } from './run.ts';

export default defineCommand({
  name: 'register',
  summary: 'Register a run\'s model (or a sweep\'s best trial) in MLflow\'s Model Registry',
  description:
    'Creates a new version of the registered model NAME from RUN\'s final model (or --which best): the run is sent ' +
    'to MLflow first if it is not complete there, its MLflow 3 LoggedModel is used (or logged now, with an MLmodel ' +
    'file declaring the tessera flavor), and the version carries the run\'s final metrics (metric.*) and tessera.* ' +
    'tags. Given a sweep\'s run, registers its best trial. The server is MLFLOW_TRACKING_URI, else the one the run ' +
    'was recorded in. Afterwards `exp predict` and `exp serve` accept models:/NAME/VERSION and models:/NAME@ALIAS.',
  positionals: [
    { name: 'RUN', description: 'A run id or run directory (a sweep\'s run: its best trial)' },
    { name: 'NAME', description: 'Registered model name (created if new)' },
  ],
  options: {
    alias: { type: 'string', placeholder: 'ALIAS', description: 'Point this alias (e.g. champion) at the new version' },
    tag: { type: 'string', multiple: true, placeholder: 'KEY=VALUE', description: 'Tag the version (repeatable)' },
    which: modelOptions.which,
    'runs-dir': modelOptions['runs-dir'],
  },
  examples: [
    ['exp register 20261204-010203-abcdef mixer-cifar100 --alias champion', 'Version N of mixer-cifar100, alias @champion'],
    ['exp register 20261204-020000-sweep01 mixer-cifar100', 'The sweep\'s best trial'],
  ],
  async run({ positionals, options }, context) {
    await registerRun(positionals[0]!, positionals[1]!, context, {
      which: whichOption(options.which, 'register'),
      alias: options.alias,
      runsDir: options['runs-dir'],
      tags: tagOptions(options.tag),
    });
  },
});
