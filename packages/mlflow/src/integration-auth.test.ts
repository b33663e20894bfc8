// The client against a REAL `mlflow server --app-name basic-auth` (its own file so that vitest
// starts this server in parallel with the one in integration.test.ts).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from './client.ts';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle, mlflowErrorFrom } from './testing.ts';

const mlflow = locateMlflowForTests();
const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

describe.skipIf(!mlflow.binary)('against a real mlflow server with --app-name basic-auth', () => {
  let server: MlflowServerHandle;

  beforeAll(async () => {
    server = await startMlflowServer({ binary: mlflow.binary, appName: 'basic-auth' });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('works with the right password and says UNAUTHENTICATED, without the secret, otherwise', async () => {
    const admin = server.admin!;
    const good = MlflowClient.fromEnv({
      MLFLOW_TRACKING_URI: server.uri,
      MLFLOW_TRACKING_USERNAME: admin.username,
      MLFLOW_TRACKING_PASSWORD: admin.password,
    });
    const id = await good.getOrCreateExperiment(unique('auth'));
    expect((await good.createRun({ experimentId: id })).info.status).toBe('RUNNING');

    const wrongPassword = `${admin.password}-wrong`;
    const bad = new MlflowClient({ trackingUri: server.uri, auth: { username: admin.username, password: wrongPassword } });
    const error = await mlflowErrorFrom(bad.getExperimentByName('Default'));
    expect([error.status, error.errorCode, error.attempts]).toEqual([401, 'UNAUTHENTICATED', 1]);
    expect(error.message).toContain('sent basic auth as "admin"');
    expect(error.message).not.toContain(wrongPassword);

    const token = 'not-a-valid-token-123';
    const bearer = new MlflowClient({ trackingUri: server.uri, auth: { token } });
    const tokenError = await mlflowErrorFrom(bearer.getExperimentByName('Default'));
    expect(tokenError.errorCode).toBe('UNAUTHENTICATED');
    expect(tokenError.message).not.toContain(token);

    const anonymous = new MlflowClient({ trackingUri: server.uri });
    expect((await mlflowErrorFrom(anonymous.searchExperiments())).message).toContain('no credentials were sent');
  });
});
