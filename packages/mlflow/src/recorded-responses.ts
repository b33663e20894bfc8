/**
 * Answers recorded from a real `mlflow server` 3.17.2 (sqlite store, --serve-artifacts), for
 * the fake server in the unit tests. Only ids and times were shortened; shapes, codes and
 * messages are verbatim. The 401 is from `--app-name basic-auth` (an HTML body, not JSON).
 */

export const RUN_ID = '04e3973e27f243238ffebf4e93cc79f9';

export const recorded = {
  experimentNotFound: {
    status: 404,
    json: {
      error_code: 'RESOURCE_DOES_NOT_EXIST',
      message: "Could not find experiment with name 'nope'",
      sqlstate: 'KAM00',
      error_class: 'RESOURCE_NOT_FOUND',
    },
  },
  experimentCreated: { status: 200, json: { experiment_id: '1' } },
  experimentExists: {
    status: 400,
    json: {
      error_code: 'RESOURCE_ALREADY_EXISTS',
      message:
        'Experiment(name=probe) already exists. Error: (sqlite3.IntegrityError) UNIQUE constraint failed: experiments.workspace, experiments.name',
      sqlstate: 'KAM00',
      error_class: 'RESOURCE_ALREADY_EXISTS',
    },
  },
  experiment: {
    status: 200,
    json: {
      experiment: {
        experiment_id: '1',
        name: 'probe',
        artifact_location: 'mlflow-artifacts:/1',
        lifecycle_stage: 'active',
        last_update_time: 1795919940641,
        creation_time: 1795919940641,
        tags: [{ key: 'a', value: 'b' }],
        workspace: 'default',
      },
    },
  },
  runCreated: {
    status: 200,
    json: {
      run: {
        info: {
          run_uuid: RUN_ID,
          experiment_id: '1',
          run_name: 'r1',
          user_id: '',
          status: 'RUNNING',
          start_time: 1700000000000,
          artifact_uri: `mlflow-artifacts:/1/${RUN_ID}/artifacts`,
          lifecycle_stage: 'active',
          run_id: RUN_ID,
        },
        data: { tags: [{ key: 'x', value: 'y' }, { key: 'mlflow.runName', value: 'r1' }] },
        inputs: {},
      },
    },
  },
  runNotFound: {
    status: 404,
    json: {
      error_code: 'RESOURCE_DOES_NOT_EXIST',
      message: 'Run with id=deadbeef not found',
      sqlstate: 'KAM00',
      error_class: 'RESOURCE_NOT_FOUND',
    },
  },
  paramChanged: {
    status: 400,
    json: {
      error_code: 'INVALID_PARAMETER_VALUE',
      message: `Changing param values is not allowed. Params were already logged='[{'key': 'p', 'old_value': '1', 'new_value': '2'}]' for run ID='${RUN_ID}'.`,
      sqlstate: 'KAM00',
      error_class: 'INVALID_PARAMETER_VALUE',
    },
  },
  unauthenticated: {
    status: 401,
    headers: { 'www-authenticate': 'Basic realm="mlflow"' },
    text: 'You are not authenticated. Please see https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.',
  },
  empty: { status: 200, json: {} },
  /** metrics/get-history?max_results=2, first page. */
  historyPage1: {
    status: 200,
    json: {
      metrics: [
        { key: 'm', value: 'NaN', timestamp: 1, step: 0 },
        { key: 'm', value: 1.7976931348623157e308, timestamp: 2, step: 1 },
      ],
      next_page_token: 'eyJvZmZzZXQiOiAyfQ==',
    },
  },
  historyPage2: {
    status: 200,
    json: {
      metrics: [
        { key: 'm', value: -1.7976931348623157e308, timestamp: 3, step: 2 },
        { key: 'm', value: 1.5, timestamp: 4, step: 3 },
      ],
    },
  },
} as const;

/** A run whose server keeps artifacts where this client cannot go (no --serve-artifacts). */
export function runWithArtifactUri(artifactUri: string) {
  const created = recorded.runCreated.json.run;
  return { status: 200, json: { run: { ...created, info: { ...created.info, artifact_uri: artifactUri } } } };
}
