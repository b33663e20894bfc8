// Fault: planted secrets (issue 17, item 5). Secrets planted in every place a user can put one
// (a secret-named variable, a secret-named tag, a URI with user info and a query token in a
// plain value, a --set argument) must appear in no file the run writes, no line it prints, and
// no field or file of the MLflow server it records to; nor may a sweep's output, its own run,
// its trial table or its trials' runs hold them; an error that echoes a URI with a password must
// not echo the password.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import { filesContaining, SMOKE, spawnExp } from './helpers.ts';

const mlflow = locateMlflowForTests();
const PLANTED = ['PLANTED-A-71c2', 'PLANTED-B-93d4', 'PLANTED-C-55e6', 'PLANTED-D-20f8', 'PLANTED-E-4a0b'];

describe.skipIf(!mlflow.binary)('fault: planted secrets', () => {
  let server: MlflowServerHandle;
  let runsDir: string;
  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary, keepFiles: true });
    runsDir = mkdtempSync(join(tmpdir(), 'tessera-fault-secrets-'));
  });
  afterAll(async () => {
    await server?.stop();
    if (server) rmSync(server.dir, { recursive: true, force: true });
    if (runsDir) rmSync(runsDir, { recursive: true, force: true });
  });

  it('appear in no run file, no output line, no MLflow field or server file', async () => {
    const [a, b, c, d] = PLANTED;
    const run = spawnExp([
      'run', SMOKE, '--runs-dir', runsDir,
      '--set', 'train.epochs=1', '--set', 'train.steps_per_epoch=2',
      '--set', `tracking.uri=${server.uri}`, '--set', 'tracking.experiment=secrets',
      '--set', `vars.api_token=${a}`,
      '--set', `tracking.tags={db_password: ${b}, team: vision}`,
      '--set', `description=mirror at https://bob:${c}@data.example.com/x?token=${d}`,
    ]);
    const { code, output } = await run.exit;
    expect(code, output).toBe(0);
    expect(output).toContain('Run ');
    for (const secret of PLANTED) expect(output).not.toContain(secret);
    expect(filesContaining(runsDir, PLANTED)).toEqual([]);

    // MLflow: the run's params and tags as the API returns them, then every file of the server
    // (its sqlite database and the artifact store).
    const client = new MlflowClient({ trackingUri: server.uri });
    const experiment = await client.getExperimentByName('secrets');
    const [mlflowRun] = await client.searchAllRuns({ experimentIds: [experiment!.experimentId] });
    expect(mlflowRun).toBeDefined();
    expect(mlflowRun!.data.params['vars.api_token']).toBe('****');
    expect(mlflowRun!.data.tags.db_password).toBe('****');
    expect(mlflowRun!.data.tags.team).toBe('vision');
    expect(mlflowRun!.data.params.description).toBe('mirror at https://bob:****@data.example.com/x?token=****');
    expect(JSON.stringify(mlflowRun)).not.toMatch(/PLANTED/);
    const config = new TextDecoder().decode(await client.downloadArtifact(mlflowRun!.info.runId, 'config.yaml'));
    expect(config).toContain('api_token: "****"');
    expect(filesContaining(server.dir, PLANTED)).toEqual([]);
  });

  it('a sweep: none in its output, its own run, its trial table, its trials\' runs or MLflow (a token inside a --set URL too)', async () => {
    const [a, b, c, d] = PLANTED;
    const sweepDir = mkdtempSync(join(tmpdir(), 'tessera-fault-secrets-sweep-'));
    const sweepFile = join(sweepDir, 'planted.yaml');
    writeFileSync(sweepFile, [`experiment: ${SMOKE}`, 'name: planted', 'method: grid', 'objective: {metric: val_loss, goal: minimize}',
      'parameters:', '  train.optimizer.learning_rate: {values: [0.01, 0.003]}', ''].join('\n'));
    try {
      const sweep = spawnExp([
        'sweep', sweepFile, '--runs-dir', runsDir,
        '--set', 'train.epochs=1', '--set', 'train.steps_per_epoch=2',
        '--set', `tracking.uri=${server.uri}`, '--set', 'tracking.experiment=secrets-sweep',
        '--set', `vars.api_token=${a}`,
        '--set', `tracking.tags={db_password: ${b}}`,
        // No space before the URL: the query token sits inside the value of a --set pair.
        '--set', `description=https://bob:${c}@data.example.com/x?token=${d}`,
      ]);
      const { code, output } = await sweep.exit;
      expect(code, output).toBe(0);
      expect(output).toMatch(/trial-001 +FINISHED/);
      for (const secret of PLANTED) expect(output).not.toContain(secret);
      expect(filesContaining(runsDir, PLANTED)).toEqual([]);
      const client = new MlflowClient({ trackingUri: server.uri });
      const experiment = await client.getExperimentByName('secrets-sweep');
      const runs = await client.searchAllRuns({ experimentIds: [experiment!.experimentId] });
      expect(runs).toHaveLength(3); // the sweep's run and its two trials
      expect(JSON.stringify(runs)).not.toMatch(/PLANTED/);
      const descriptions = runs.map((run) => run.data.params.description).filter(Boolean);
      expect(descriptions.length).toBeGreaterThanOrEqual(2); // each trial's
      for (const description of descriptions) expect(description).toBe('https://bob:****@data.example.com/x?token=****');
      expect(filesContaining(server.dir, PLANTED)).toEqual([]);
    } finally {
      rmSync(sweepDir, { recursive: true, force: true });
    }
  });

  it('an error that echoes a --set URI with a password prints the password masked', async () => {
    const e = PLANTED[4]!;
    const run = spawnExp(['run', SMOKE, '--runs-dir', runsDir, '--set', `tracking.uri=http://user:${e}@127.0.0.1:1`]);
    const { code, output } = await run.exit;
    expect(code).toBe(2);
    expect(output).toContain('user:****@127.0.0.1:1');
    expect(output).not.toContain(e);
    expect(filesContaining(runsDir, [e])).toEqual([]);
  });
});
