// A run's model end to end against a REAL mlflow server (startMlflowServer: sqlite store, proxied
// artifacts, temp folder): exp run --register -> exp evaluate -> exp predict -> exp serve (a child
// process answering concurrent requests, SIGTERM) -> the LoggedModel and registered versions
// through MLflow's REST API -> exp predict models:/NAME/VERSION and models:/NAME@ALIAS.
// Needs `bash scripts/setup-mlflow.sh`; skipped locally without it, fails under CI=true.
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowClient } from '@tessera/mlflow';
import { locateMlflowForTests, startMlflowServer, type MlflowServerHandle } from '@tessera/mlflow/testing';
import sharp from 'sharp';
import { parse } from 'yaml';
import { main } from '../main.ts';
import { recordImage, runExpProcess, smallRecords, startExpServe } from '../test-helpers.ts';

const mlflow = locateMlflowForTests();
const ROOT = resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
const SMOKE = join(ROOT, 'experiments', 'smoke.yaml');
const work = mkdtempSync(join(tmpdir(), 'tessera-models-e2e-'));
const runsDir = join(work, 'runs');
const NAME = `smoke-${randomBytes(3).toString('hex')}`;

/** Width and height from a PNG's IHDR chunk (after the 8-byte signature and the chunk header). */
function pngSize(png: Uint8Array): [number, number] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

/** A 107-byte PNG whose header claims width x height pixels (a decompression bomb's first line). */
function hugePng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

async function exp(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { cwd: work, stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } });
  return { code, out: out.join(''), err: err.join('') };
}

let server: MlflowServerHandle;
let client: MlflowClient;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  if (!mlflow.binary) return;
  server = await startMlflowServer();
  client = new MlflowClient({ trackingUri: server.uri });
  for (const key of ['MLFLOW_TRACKING_URI', 'TESSERA_RUNS_DIR', 'TESSERA_CACHE']) saved[key] = process.env[key];
  Object.assign(process.env, { MLFLOW_TRACKING_URI: server.uri, TESSERA_RUNS_DIR: runsDir, TESSERA_CACHE: join(work, 'cache') });
  writeFileSync(join(work, 'images.bin'), smallRecords(6));
  // Two real image files of another size than the model's 8x8: a 24x16 PNG and a 16x16 JPEG.
  const gradient = (w: number, h: number) => Buffer.from(Array.from({ length: w * h * 3 }, (_, i) => (i * 13 + (i % 3) * 80) % 256));
  await sharp(gradient(24, 16), { raw: { width: 24, height: 16, channels: 3 } }).png().toFile(join(work, 'a.png'));
  await sharp(gradient(16, 16), { raw: { width: 16, height: 16, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(work, 'b.jpg'));
  const png = readFileSync(join(work, 'a.png'));
  writeFileSync(join(work, 'broken.png'), png.subarray(0, png.length >> 1)); // truncated mid-data
  writeFileSync(join(work, 'huge.png'), hugePng(100_000, 100_000));
}, 120_000);

afterAll(async () => {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!mlflow.binary)('a run\'s model: evaluate, predict, serve, register (real MLflow)', () => {
  let runId = '';
  let runDir = '';
  let predicted: { predictions: { input: string; probabilities: number[]; top_k: { class: string }[] }[] };
  let imagePredictions: typeof predicted;

  it('exp run --register trains, saves final + best models with metadata, logs a LoggedModel and registers version 1', async () => {
    const result = await exp('run', SMOKE, '--backend', 'cpu', '--set', 'train.epochs=2', '--register', NAME, '--alias', 'champion');
    expect(result.code, result.err + result.out).toBe(0);
    runId = /Run (\S+) FINISHED/.exec(result.out)![1]!;
    runDir = join(runsDir, 'smoke', runId);
    expect(result.out).toMatch(new RegExp(`Registered ${NAME} version 1 \\(LoggedModel m-\\w+`));
    // The live run logged its LoggedModel itself (exp register then used it).
    expect(result.err + result.out).toMatch(/MLflow model: m-\w+/);
    for (const which of ['model', 'best_model']) {
      const json = JSON.parse(readFileSync(join(runDir, 'artifacts', which, 'model.json'), 'utf8'));
      const meta = json.userDefinedMetadata.tessera;
      expect(meta).toMatchObject({ format: 2, runId, which: which === 'model' ? 'final' : 'best', rawShape: [8, 8, 3], classes: ['class_0', 'class_1', 'class_2', 'class_3'] });
      expect(meta.configDigest).toMatch(/^[0-9a-f]{12}$/);
      expect(Object.keys(meta.data.state.normalize)).toEqual(['mean', 'variance']);
    }
  }, 180_000);

  it('exp evaluate records loss/metrics, a real confusion-matrix PNG and CSVs in the run and in MLflow', async () => {
    const result = await exp('evaluate', runId, '--backend', 'cpu');
    expect(result.code, result.err).toBe(0);
    expect(result.out).toMatch(/128 examples \(test\): loss \d\.\d{4}, accuracy \d+\.\d\d%/);
    const dir = join(runDir, 'artifacts', 'eval', 'test');
    const png = readFileSync(join(dir, 'confusion_matrix.png'));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const [width, height] = pngSize(png);
    expect(width).toBe(800); // PLOT_WIDTH
    expect(height).toBeGreaterThan(300);
    // A real PNG: it decodes whole, to the size its header says, and is not blank (the heatmap's cells differ).
    const decoded = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([decoded.info.width, decoded.info.height]).toEqual([width, height]);
    expect(new Set(decoded.data).size).toBeGreaterThan(16);
    const matrix = readFileSync(join(dir, 'confusion_matrix.csv'), 'utf8').trim().split('\n').slice(1).map((line) => line.split(',').slice(1).map(Number));
    expect(matrix).toHaveLength(4);
    expect(matrix.flat().reduce((a, b) => a + b, 0)).toBe(128);
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    const accuracy = matrix.reduce((sum, row, i) => sum + row[i]!, 0) / 128;
    expect(report.metrics.accuracy).toBeCloseTo(accuracy, 12);
    // Recall of class c by hand: its diagonal cell over its row.
    report.per_class.forEach((r: { recall: number }, c: number) => expect(r.recall).toBeCloseTo(matrix[c]![c]! / matrix[c]!.reduce((a, b) => a + b, 0), 12));

    const [mlflowRun] = (await client.searchAllRuns({ experimentIds: [(await client.getExperimentByName('smoke'))!.experimentId], filter: `tags.\`tessera.run_id\` = '${runId}'` }));
    const metrics = Object.fromEntries(mlflowRun!.data.metrics.map((m) => [m.key, m.value]));
    expect(metrics.eval_accuracy).toBeCloseTo(accuracy, 6);
    const files = (await client.listArtifacts(mlflowRun!.info.runId, 'eval/test')).map((f) => f.path);
    expect(files).toContain('eval/test/confusion_matrix.png');

    // Another dataset config: the smoke data drawn with another seed (other images, same classes).
    writeFileSync(join(work, 'other-data.yaml'), readFileSync(SMOKE, 'utf8').replace(/^seed: 1$/m, 'seed: 9'));
    const other = await exp('evaluate', runId, '--data', 'other-data.yaml', '--split', 'validation', '--backend', 'cpu');
    expect(other.code, other.err).toBe(0);
    expect(other.out).toMatch(/128 examples \(validation\): loss/);
    expect(other.out).toMatch(/recorded in run \S+: eval_synthetic_validation_\* metrics and /);
    expect(existsSync(join(runDir, 'artifacts', 'eval', 'synthetic-validation', 'confusion_matrix.png'))).toBe(true);
    // Another split, another model: recorded under their own names, the test split's eval_* untouched.
    const best = await exp('evaluate', runId, '--which', 'best', '--backend', 'cpu');
    expect(best.code, best.err).toBe(0);
    expect(existsSync(join(runDir, 'artifacts', 'eval', 'test-best', 'report.json'))).toBe(true);
    const latest: Record<string, number> = Object.assign({}, ...readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line)));
    expect(latest.eval_accuracy).toBe(report.metrics.accuracy);
    const otherReport = JSON.parse(readFileSync(join(runDir, 'artifacts', 'eval', 'synthetic-validation', 'report.json'), 'utf8'));
    expect(latest.eval_synthetic_validation_accuracy).toBe(otherReport.metrics.accuracy);
    const bestReport = JSON.parse(readFileSync(join(runDir, 'artifacts', 'eval', 'test-best', 'report.json'), 'utf8'));
    expect(latest.eval_test_best_accuracy).toBe(bestReport.metrics.accuracy);
  }, 120_000);

  it('exp predict RUN classifies records with the top-k table, JSON and the training preprocessing', async () => {
    const result = await exp('predict', runId, '--input', 'images.bin', '--json', '--backend', 'cpu');
    expect(result.code, result.err).toBe(0);
    predicted = JSON.parse(result.out);
    expect(predicted.predictions).toHaveLength(6);
    for (const p of predicted.predictions) expect(p.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);

    const images = await exp('predict', runId, '--input', 'a.png', 'b.jpg', '--json', '--backend', 'cpu');
    expect(images.code, images.err).toBe(0);
    imagePredictions = JSON.parse(images.out);
    expect(imagePredictions.predictions.map((p) => p.input)).toEqual(['a.png', 'b.jpg']);
    const table = await exp('predict', runId, '--input', 'a.png', '--input', 'b.jpg', '--top-k', '2', '--backend', 'cpu');
    expect(table.out).toMatch(/^input +top-1 +top-2\na\.png +class_\d \d+\.\d\d% +class_\d/);
    const glob = await exp('predict', runId, '--input', '*.{png,jpg}', '--json', '--backend', 'cpu');
    expect(glob.code, glob.err).toBe(2); // broken.png matches too: an error naming it
    expect(glob.err).toMatch(/broken\.png: corrupt or truncated image/);
    const huge = await exp('predict', runId, '--input', 'huge.png', '--backend', 'cpu');
    expect(huge.code).toBe(2);
    expect(huge.err).toMatch(/^huge\.png: .*exceeds pixel limit$/m);

    // exp export --which best: the best epoch's model as a self-contained directory, predicting as the run's best model.
    const exported = await exp('export', runId, '--which', 'best', '--out', 'exported-best');
    expect(exported.code, exported.err).toBe(0);
    expect(exported.out).toMatch(new RegExp(`wrote exported-best/ \\(model\\.json, weights\\.bin; .* MB\\): best model of run ${runId}, 4 classes, input 8x8x3`));
    expect(readFileSync(join(work, 'exported-best', 'weights.bin')).equals(readFileSync(join(runDir, 'artifacts', 'best_model', 'weights.bin')))).toBe(true);
    const fromExport = await exp('predict', 'exported-best', '--input', 'a.png', 'b.jpg', '--json', '--backend', 'cpu');
    const fromRun = await exp('predict', runId, '--which', 'best', '--input', 'a.png', 'b.jpg', '--json', '--backend', 'cpu');
    expect(fromExport.code, fromExport.err).toBe(0);
    expect(JSON.parse(fromExport.out).predictions).toEqual(JSON.parse(fromRun.out).predictions);
  }, 60_000);

  it('exp serve answers 16 concurrent clients with exp predict\'s probabilities (to 1e-6), then stops on SIGTERM', async () => {
    const served = await startExpServe(runId);
    const url = served.url;
    const bytes = smallRecords(6);
    // 16 clients at once: half send a record's pixels, half the PNG or the JPEG as base64 (decoded by the server).
    const images = ['a.png', 'b.jpg'].map((file) => readFileSync(join(work, file)).toString('base64'));
    const instance = (i: number) => (i % 2 === 0 ? recordImage(bytes, (i / 2) % 6) : images[(i >> 1) % 2]);
    const wanted = (i: number) => (i % 2 === 0 ? predicted.predictions[(i / 2) % 6]! : imagePredictions.predictions[(i >> 1) % 2]!).probabilities;
    const responses = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [instance(i)] }) }).then((r) => r.json() as Promise<{ predictions: { probabilities: number[] }[] }>),
      ),
    );
    responses.forEach((body, i) => {
      const want = wanted(i);
      body.predictions[0]!.probabilities.forEach((p, c) => expect(Math.abs(p - want[c]!)).toBeLessThan(1e-6));
    });
    // The same image files as base64 JSON and as multipart: exp predict's probabilities to 1e-6.
    const viaJson = (await (await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: images }) })).json()) as {
      predictions: { probabilities: number[] }[];
    };
    const form = new FormData();
    for (const file of ['a.png', 'b.jpg']) form.append('file', new Blob([readFileSync(join(work, file))]), file);
    const viaForm = (await (await fetch(`${url}/invocations`, { method: 'POST', body: form })).json()) as typeof viaJson;
    for (const answer of [viaJson, viaForm]) {
      answer.predictions.forEach((p, i) => p.probabilities.forEach((v, c) => expect(Math.abs(v - imagePredictions.predictions[i]!.probabilities[c]!)).toBeLessThan(1e-6)));
    }
    const broken = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [readFileSync(join(work, 'broken.png')).toString('base64')] }) });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: string }).error).toMatch(/^instances\[0\]: corrupt or truncated image/);
    // An SVG (which libvips could render) is not an image format the server reads.
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>').toString('base64');
    const vector = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [svg] }) });
    expect(vector.status).toBe(400);
    expect(((await vector.json()) as { error: string }).error).toBe('instances[0]: not a readable image (unknown format; PNG, JPEG, WebP, GIF, TIFF and BMP are read)');
    const huge = await fetch(`${url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [readFileSync(join(work, 'huge.png')).toString('base64')] }) });
    expect(huge.status).toBe(400);
    expect(((await huge.json()) as { error: string }).error).toMatch(/^instances\[0\]: .*pixel limit/);
    const metadata = (await (await fetch(`${url}/metadata`)).json()) as { stats: { batches: number; items: number } };
    expect(metadata).toMatchObject({ run_id: runId, classes: ['class_0', 'class_1', 'class_2', 'class_3'], input: { shape: [8, 8, 3] } });
    expect(metadata.stats.items).toBe(16 + 2 + 2); // every image went through the batcher once
    expect(await served.stop()).toBe(0);
    expect(served.output()).toMatch(/SIGTERM: finishing the requests in flight/);
  }, 120_000);

  it('MLflow shows the LoggedModel (tessera flavor, linked to the run) and registered versions; models:/ URIs predict the same', async () => {
    const experimentId = (await client.getExperimentByName('smoke'))!.experimentId;
    const [mlflowRun] = await client.searchAllRuns({ experimentIds: [experimentId], filter: `tags.\`tessera.run_id\` = '${runId}'` });
    const models = await client.searchLoggedModels({ experimentIds: [experimentId] });
    const logged = models.find((m) => m.sourceRunId === mlflowRun!.info.runId && m.name === 'model')!;
    expect(logged).toMatchObject({ status: 'LOGGED_MODEL_READY', modelType: 'tessera', name: 'model' });
    expect(mlflowRun!.data.tags['tessera.model_id']).toBe(logged.modelId);
    expect(logged.metrics.map((m) => m.key)).toEqual(expect.arrayContaining(['val_accuracy', 'test_accuracy']));
    const files = (await client.listLoggedModelArtifacts(logged.modelId)).map((f) => f.path).sort();
    expect(files).toEqual(['MLmodel', 'model.json', 'weights.bin']);
    const dir = join(work, 'mlmodel');
    await client.downloadLoggedModelFile(logged.modelId, 'MLmodel', join(dir, 'MLmodel'));
    const mlmodel = parse(readFileSync(join(dir, 'MLmodel'), 'utf8'));
    expect(mlmodel.flavors.tessera).toMatchObject({ format: 'tfjs-layers-model', model_path: 'model.json', classes: ['class_0', 'class_1', 'class_2', 'class_3'], tessera_run_id: runId });
    expect(JSON.parse(mlmodel.signature.inputs)[0]['tensor-spec']).toEqual({ dtype: 'uint8', shape: [-1, 8, 8, 3] });

    const v1 = await client.getModelVersion(NAME, '1');
    // MLflow 3.x's REST answer names the LoggedModel in `source` (model_id is not echoed back).
    expect(v1).toMatchObject({ runId: mlflowRun!.info.runId, source: `models:/${logged.modelId}` });
    expect(v1.tags['tessera.run_id']).toBe(runId);
    expect(Number(v1.tags['metric.test_accuracy'])).toBeGreaterThan(0);
    expect((await client.getModelVersionByAlias(NAME, 'champion')).version).toBe('1');

    // exp register makes version 2 from the best epoch's model: the run's LoggedModel of it (the
    // final one's when the best epoch is the last), never one more.
    const before = (await client.searchLoggedModels({ experimentIds: [experimentId] })).filter((m) => m.sourceRunId === mlflowRun!.info.runId);
    const second = await exp('register', runId, NAME, '--which', 'best');
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(new RegExp(`Registered ${NAME} version 2`));
    const after = (await client.searchLoggedModels({ experimentIds: [experimentId] })).filter((m) => m.sourceRunId === mlflowRun!.info.runId);
    expect(after.map((m) => m.modelId).sort()).toEqual(before.map((m) => m.modelId).sort());
    // The live run logged its best model too when it is from another epoch than the final one.
    const epochOf = (which: string) => JSON.parse(readFileSync(join(runDir, 'artifacts', which, 'model.json'), 'utf8')).userDefinedMetadata.tessera.epoch as number;
    expect(before.map((m) => m.name).sort()).toEqual(epochOf('best_model') === epochOf('model') ? ['model'] : ['best_model', 'model']);
    const bestId = before.find((m) => m.name === 'best_model')?.modelId ?? logged.modelId;
    expect((await client.getModelVersion(NAME, '2')).source).toBe(`models:/${bestId}`);

    // A real sweep (two trials, exp run processes, their runs in the sweep's trial stores): its run
    // stands for its best trial (tag best_run_id), and one command registers the winner.
    writeFileSync(
      join(work, 'grid.yaml'),
      `experiment: ${SMOKE}\nmethod: grid\nmetric: {name: val_loss, goal: minimize}\nparameters:\n  train.optimizer.learning_rate: {values: [0.01, 0.003]}\nparallel: 2\nseed: 0\n`,
    );
    const swept = await runExpProcess(['sweep', join(work, 'grid.yaml'), '--set', 'train.epochs=1', '--backend', 'cpu', '--runs-dir', runsDir]);
    expect(swept.code, swept.stderr + swept.stdout).toBe(0);
    const sweepRunId = /exp register (\S+) NAME/.exec(swept.stdout)![1]!;
    const bestTrialRun = JSON.parse(readFileSync(join(runsDir, 'smoke', sweepRunId, 'tags.json'), 'utf8')).best_run_id as string;
    expect(existsSync(join(runsDir, 'smoke', bestTrialRun))).toBe(false); // it lives under runs/sweeps/grid/trials/
    const sweep = await exp('register', sweepRunId, `${NAME}-best`);
    expect(sweep.code, sweep.err).toBe(0);
    expect(sweep.err).toMatch(new RegExp(`sweep ${sweepRunId}: registering its best trial, run ${bestTrialRun}`));
    expect((await client.getModelVersion(`${NAME}-best`, '1')).tags['tessera.run_id']).toBe(bestTrialRun);
    const bestByTrial = await exp('predict', bestTrialRun, '--input', 'a.png', 'b.jpg', '--json', '--backend', 'cpu');
    const bestByRegistry = await exp('predict', `models:/${NAME}-best/1`, '--input', 'a.png', 'b.jpg', '--json', '--backend', 'cpu');
    expect(bestByTrial.code, bestByTrial.err).toBe(0);
    expect(JSON.parse(bestByRegistry.out).predictions).toEqual(JSON.parse(bestByTrial.out).predictions);

    for (const uri of [`models:/${NAME}/1`, `models:/${NAME}@champion`, `runs:/${mlflowRun!.info.runId}/model`]) {
      const result = await exp('predict', uri, '--input', 'images.bin', '--json', '--backend', 'cpu');
      expect(result.code, result.err).toBe(0);
      const got = JSON.parse(result.out) as typeof predicted;
      got.predictions.forEach((p, i) => p.probabilities.forEach((v, c) => expect(v).toBe(predicted.predictions[i]!.probabilities[c])));
    }
    // The registered version classifies the real PNG and JPEG as the run's model did.
    const viaRegistry = await exp('predict', `models:/${NAME}/1`, '--input', 'a.png', 'b.jpg', '--json', '--backend', 'cpu');
    expect(viaRegistry.code, viaRegistry.err).toBe(0);
    expect((JSON.parse(viaRegistry.out) as typeof predicted).predictions).toEqual(imagePredictions.predictions);
    expect(existsSync(join(work, 'cache', 'mlflow-models', logged.modelId, 'model.json'))).toBe(true);
  }, 180_000);

  it('exp serve models:/NAME/1 fetches the registered model and answers as exp predict models:/NAME/1 (to 1e-6)', async () => {
    const predictedVersion = await exp('predict', `models:/${NAME}/1`, '--input', 'images.bin', '--json', '--backend', 'cpu');
    expect(predictedVersion.code, predictedVersion.err).toBe(0);
    const want = (JSON.parse(predictedVersion.out) as typeof predicted).predictions;
    rmSync(join(work, 'cache'), { recursive: true, force: true }); // the server fetches it itself
    const served = await startExpServe(`models:/${NAME}/1`);
    try {
      const bytes = smallRecords(6);
      const body = (await (await fetch(`${served.url}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [0, 1, 2, 3, 4, 5].map((r) => recordImage(bytes, r)) }) })).json()) as {
        predictions: { probabilities: number[] }[];
      };
      expect(body.predictions).toHaveLength(6);
      body.predictions.forEach((p, i) => p.probabilities.forEach((v, c) => expect(Math.abs(v - want[i]!.probabilities[c]!)).toBeLessThan(1e-6)));
      const metadata = (await (await fetch(`${served.url}/metadata`)).json()) as { run_id: string };
      expect(metadata.run_id).toBe(runId);
      expect(await served.stop()).toBe(0);
    } finally {
      served.kill();
    }
  }, 120_000);

  it('a run trained while MLflow is down gets its final and best LoggedModels from exp sync, once (two syncs at once, then another)', async () => {
    // lr 0.3 on the cpu backend (deterministic): the best epoch (val_loss) is 3 of 4, so best_model differs.
    process.env.MLFLOW_TRACKING_URI = 'http://127.0.0.1:9'; // nothing listens there
    let trained;
    try {
      trained = await exp('run', SMOKE, '--backend', 'cpu', '--set', 'train.epochs=4', '--set', 'train.optimizer.learning_rate=0.3');
    } finally {
      process.env.MLFLOW_TRACKING_URI = server.uri;
    }
    expect(trained.code, trained.err + trained.out).toBe(0);
    const offlineId = /Run (\S+) FINISHED/.exec(trained.out)![1]!;
    expect(trained.out).toContain(`Use its model: exp evaluate ${offlineId} | exp predict ${offlineId} --input IMAGE | exp serve ${offlineId} | exp register ${offlineId} NAME`);
    const dir = join(runsDir, 'smoke', offlineId);
    expect(readFileSync(join(dir, 'mlflow.json'), 'utf8')).toMatch(/"call": "logModel model"/);
    const epochOf = (which: string) => JSON.parse(readFileSync(join(dir, 'artifacts', which, 'model.json'), 'utf8')).userDefinedMetadata.tessera.epoch as number;
    expect([epochOf('model'), epochOf('best_model')]).toEqual([4, 3]);

    const syncs = await Promise.all([exp('sync', offlineId, '--uri', server.uri), exp('sync', offlineId, '--uri', server.uri)]);
    for (const sync of syncs) expect(sync.code, sync.err).toBe(0);
    expect(syncs.map((sync) => sync.out).join('')).toMatch(/2 LoggedModels/);
    const experimentId = (await client.getExperimentByName('smoke'))!.experimentId;
    const mlflowRuns = await client.searchAllRuns({ experimentIds: [experimentId], filter: `tags.\`tessera.run_id\` = '${offlineId}'` });
    expect(mlflowRuns).toHaveLength(1);
    const mlflowRun = mlflowRuns[0]!;
    const modelsOfRun = async () => (await client.searchLoggedModels({ experimentIds: [experimentId] })).filter((m) => m.sourceRunId === mlflowRun.info.runId);
    const models = await modelsOfRun();
    expect(models.map((m) => `${m.name}:${m.tags['tessera.which']}:${m.tags['tessera.epoch']}:${m.status}`).sort()).toEqual([
      'best_model:best:3:LOGGED_MODEL_READY',
      'model:final:4:LOGGED_MODEL_READY',
    ]);
    const localHistory = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, number>);
    const valLossAt = (step: number) => localHistory.filter((r) => r.step === step && r.val_loss !== undefined).at(-1)!.val_loss;
    for (const [which, folder, tag, epoch] of [['final', 'model', 'tessera.model_id', 4], ['best', 'best_model', 'tessera.best_model_id', 3]] as const) {
      const model = models.find((m) => m.tags['tessera.which'] === which)!;
      expect(mlflowRun.data.tags[tag]).toBe(model.modelId);
      // Linked to the run's metrics as they were at the model's epoch.
      const linked = (await client.getLoggedModel(model.modelId)).metrics;
      expect(linked.find((m) => m.key === 'val_loss')).toMatchObject({ step: epoch, value: valLossAt(epoch) });
      expect((await client.listLoggedModelArtifacts(model.modelId)).map((f) => f.path).sort()).toEqual(['MLmodel', 'model.json', 'weights.bin']);
      const got = join(work, `synced-${which}`);
      for (const file of ['MLmodel', 'weights.bin']) await client.downloadLoggedModelFile(model.modelId, file, join(got, file));
      expect(readFileSync(join(got, 'weights.bin')).equals(readFileSync(join(dir, 'artifacts', folder, 'weights.bin')))).toBe(true);
      expect(parse(readFileSync(join(got, 'MLmodel'), 'utf8'))).toMatchObject({
        model_id: model.modelId,
        run_id: mlflowRun.info.runId,
        flavors: { tessera: { format: 'tfjs-layers-model', model_path: 'model.json', which, tessera_run_id: offlineId } },
      });
    }
    // The run's curves are unchanged: linking the metrics to the models added no history rows.
    expect((await client.getMetricHistory(mlflowRun.info.runId, 'val_loss')).map((m) => m.step)).toEqual([1, 2, 3, 4]);

    const again = await exp('sync', offlineId, '--uri', server.uri);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/already up to date/);
    // exp register --which best and --which final use those two LoggedModels; none is added.
    for (const which of ['best', 'final']) {
      const registered = await exp('register', offlineId, `${NAME}-offline`, '--which', which);
      expect(registered.code, registered.err).toBe(0);
    }
    expect((await client.getModelVersion(`${NAME}-offline`, '1')).source).toBe(`models:/${mlflowRun.data.tags['tessera.best_model_id']}`);
    expect((await client.getModelVersion(`${NAME}-offline`, '2')).source).toBe(`models:/${mlflowRun.data.tags['tessera.model_id']}`);
    expect((await modelsOfRun()).map((m) => m.modelId).sort()).toEqual(models.map((m) => m.modelId).sort());
  }, 240_000);

  it('refuses a registered name that does not exist, a missing run and an old model directory with clear errors (exit 2)', async () => {
    const missing = await exp('predict', `models:/${NAME}-nope/1`, '--input', 'images.bin');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/not found in MLflow/);
    const noAlias = await exp('predict', `models:/${NAME}@nope`, '--input', 'images.bin');
    expect(noAlias.code).toBe(2);
    expect(noAlias.err).toMatch(new RegExp(`^models:/${NAME}@nope: not found in MLflow .*alias nope not found`));
    // Names MLflow would refuse are refused before anything is registered: no version without its alias.
    for (const [args, message] of [
      [[NAME, '--alias', 'v7'], /--alias "v7": "latest" and v<number> are reserved by MLflow/],
      [[NAME, '--alias', 'the champion'], /--alias "the champion": an alias is letters, digits, _ and -/],
      [['a/b'], /"a\/b" cannot name a registered model: it must be non-empty, without \/ or :/],
    ] as const) {
      const refused = await exp('register', runId, ...args);
      expect(refused.code).toBe(2);
      expect(refused.err).toMatch(message);
    }
    await client.getModelVersion(NAME, '2'); // the earlier tests made versions 1 and 2; no third
    await expect(client.getModelVersion(NAME, '3')).rejects.toThrow(/RESOURCE_DOES_NOT_EXIST|not found/i);
    const badHost = await exp('serve', runId, '--host', 'no-such-host.invalid', '--port', '0', '--backend', 'cpu');
    expect(badHost.code).toBe(2);
    expect(badHost.err).toMatch(/^exp serve: cannot listen on no-such-host\.invalid:0: (ENOTFOUND|EAI_AGAIN)$/m);
    // A run stopped before its end has a best model only: register says so before sending anything to MLflow.
    const killed = join(runsDir, 'smoke', '20261205-000001-k111ed');
    mkdirSync(join(killed, 'artifacts'), { recursive: true });
    cpSync(join(runDir, 'artifacts', 'best_model'), join(killed, 'artifacts', 'best_model'), { recursive: true });
    writeFileSync(join(killed, 'meta.json'), JSON.stringify({ runId: '20261205-000001-k111ed', experiment: 'smoke', runName: 'killed', status: 'KILLED', startTime: new Date().toISOString() }));
    const noFinal = await exp('register', '20261205-000001-k111ed', `${NAME}-killed`);
    expect(noFinal.code).toBe(2);
    expect(noFinal.err).toMatch(/run 20261205-000001-k111ed \(status KILLED\) has no final model .*; it has a best model: --which best/);
    expect(existsSync(join(killed, 'mlflow.json'))).toBe(false);
    // An --out that cannot be a folder is exit 2 before any work.
    writeFileSync(join(work, 'a-file'), '');
    for (const command of ['export', 'evaluate']) {
      const badOut = await exp(command, runId, '--out', 'a-file/sub');
      expect(badOut.code).toBe(2);
      expect(badOut.err).toMatch(new RegExp(`^exp ${command}: --out a-file/sub: .*a-file is not a folder$`, 'm'));
      expect(badOut.out).toBe('');
    }
    const noRun = await exp('evaluate', '20990101-000000-ffffff');
    expect(noRun.code).toBe(2);
    expect(noRun.err).toMatch(/no such run id/);
    const old = join(work, 'old-model');
    const json = JSON.parse(readFileSync(join(runDir, 'artifacts', 'model', 'model.json'), 'utf8'));
    json.userDefinedMetadata = { tessera: { experiment: 'x', inputShape: [8, 8, 3], data: { type: 'synthetic' } } };
    mkdirSync(old, { recursive: true });
    writeFileSync(join(old, 'model.json'), JSON.stringify(json));
    writeFileSync(join(old, 'weights.bin'), readFileSync(join(runDir, 'artifacts', 'model', 'weights.bin')));
    const refused = await exp('predict', old, '--input', 'images.bin');
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/older Tessera \(metadata format 1\) and lacks rawShape, classes, config, data\.transforms, data\.state, data\.numClasses, data\.records/);
  }, 60_000);
});
