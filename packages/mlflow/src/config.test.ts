import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Credentials, mlflowConfigFromEnv, parseTrackingUri } from './config.ts';
import { MlflowError } from './errors.ts';

const PASSWORD = 'hunter2-Pa55';
const TOKEN = 'tok-SECRET-123';
const base64 = (text: string) => Buffer.from(text).toString('base64');

describe('mlflowConfigFromEnv', () => {
  it('reads the tracking URI, experiment name and basic auth', () => {
    const config = mlflowConfigFromEnv({
      MLFLOW_TRACKING_URI: 'http://mlflow:5000',
      MLFLOW_EXPERIMENT_NAME: 'cifar',
      MLFLOW_TRACKING_USERNAME: 'alice',
      MLFLOW_TRACKING_PASSWORD: PASSWORD,
    });
    expect(config.trackingUri).toBe('http://mlflow:5000');
    expect(config.experimentName).toBe('cifar');
    expect(config.credentials?.kind).toBe('basic');
    expect(config.credentials?.authorizationHeader()).toBe(`Basic ${base64(`alice:${PASSWORD}`)}`);
  });

  it('uses a bearer token when no user name is set, and prefers basic auth like MLflow', () => {
    expect(mlflowConfigFromEnv({ MLFLOW_TRACKING_TOKEN: TOKEN }).credentials?.authorizationHeader()).toBe(`Bearer ${TOKEN}`);
    const both = mlflowConfigFromEnv({ MLFLOW_TRACKING_TOKEN: TOKEN, MLFLOW_TRACKING_USERNAME: 'a', MLFLOW_TRACKING_PASSWORD: 'b' });
    expect(both.credentials?.kind).toBe('basic');
    expect(mlflowConfigFromEnv({}).credentials).toBeUndefined();
    expect(mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: '' }).trackingUri).toBeUndefined();
  });

  it("reads MLflow's HTTP timeout (seconds) and retry count, and refuses nonsense", () => {
    const config = mlflowConfigFromEnv({ MLFLOW_HTTP_REQUEST_TIMEOUT: '2.5', MLFLOW_HTTP_REQUEST_MAX_RETRIES: '0' });
    expect([config.timeoutMs, config.maxRetries]).toEqual([2500, 0]);
    expect(() => mlflowConfigFromEnv({ MLFLOW_HTTP_REQUEST_TIMEOUT: '0' })).toThrow(
      'MLFLOW_HTTP_REQUEST_TIMEOUT="0": expected a positive number of seconds',
    );
    expect(() => mlflowConfigFromEnv({ MLFLOW_HTTP_REQUEST_MAX_RETRIES: '2.5' })).toThrow('expected a non-negative integer');
  });

  it('refuses half-configured basic auth without echoing the password', () => {
    expect(() => mlflowConfigFromEnv({ MLFLOW_TRACKING_PASSWORD: PASSWORD })).toThrow(
      'MLFLOW_TRACKING_PASSWORD is set but MLFLOW_TRACKING_USERNAME is not',
    );
    expect(() => mlflowConfigFromEnv({ MLFLOW_TRACKING_USERNAME: 'alice' })).toThrow(
      'MLFLOW_TRACKING_USERNAME is set but MLFLOW_TRACKING_PASSWORD is not',
    );
  });
});

describe('Credentials never show their secret', () => {
  it.each([
    ['basic', new Credentials({ username: 'alice', password: PASSWORD }), PASSWORD],
    ['bearer', new Credentials({ token: TOKEN }), TOKEN],
  ])('%s: toString, JSON and inspect', (_, credentials, secret) => {
    const shown = [
      String(credentials),
      JSON.stringify(credentials),
      inspect(credentials, { showHidden: true, depth: 10 }),
      inspect({ nested: { credentials } }, { depth: 10 }),
    ].join('\n');
    expect(shown).not.toContain(secret);
    expect(shown).not.toContain(base64(`alice:${PASSWORD}`));
    expect(String(credentials)).toMatch(/^Credentials\((basic auth as "alice"|a bearer token)\)$/);
  });
});

describe('parseTrackingUri', () => {
  it('moves user info into basic auth and strips it from the base URL', () => {
    const target = parseTrackingUri(`https://bob:${encodeURIComponent('p@ss/word')}@mlflow.example:8443/prefix/`);
    expect(target.baseUrl).toBe('https://mlflow.example:8443/prefix');
    expect(target.credentials?.authorizationHeader()).toBe(`Basic ${base64('bob:p@ss/word')}`);
  });

  it.each([
    ['file:///tmp/mlruns', 'uses file:'],
    ['databricks', 'is not a URL'],
    [`sqlite:///x.db`, 'uses sqlite:'],
  ])('refuses %s with a clear message', (uri, expected) => {
    let error: unknown;
    try {
      parseTrackingUri(uri);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(MlflowError);
    expect((error as MlflowError).errorCode).toBe('INVALID_CONFIGURATION');
    expect((error as MlflowError).message).toContain(expected);
  });

  it('does not echo a password from a malformed URI', () => {
    expect(() => parseTrackingUri(`ftp://eve:${PASSWORD}@host`)).toThrow(/ftp:\/\/\*\*\*@host/);
    try {
      parseTrackingUri(`ftp://eve:${PASSWORD}@host`);
    } catch (error) {
      expect((error as Error).message).not.toContain(PASSWORD);
    }
  });
});
