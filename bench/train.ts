// Training throughput, Tessera vs the Keras 3 reference: the three reference models by default,
// ConvMixer and ViT-small (experiments/convmixer.yaml, vit-small.yaml) on request.
//
//   pnpm bench train                      every available backend except plain-JS cpu, + Keras
//   pnpm bench train -- --models convmixer,vit-small
//   pnpm bench train -- --backends wasm --models mixer --steps 5 --warmup 2 --no-keras
//
// For each (model, backend) a child process builds the model from experiments/<model>.yaml,
// then times full training steps (forward, cross-entropy, gradients, AdamW update: the engine's
// step without its metrics) on random data at batch 128, and reports the median step after a
// warm-up, images/s and peak memory. bench/keras_reference.py measures the same for Keras 3
// (the faster of its default step and jit_compile=True, XLA) and the machine's sgemm rate
// (numpy) in the same run. Everything lands in bench/results.md.
// See docs/performance.md for what the numbers mean.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureBenchVenv } from './lib/venv.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);

const MODELS = ['mixer', 'fnet', 'gmlp', 'convmixer', 'vit-small'] as const;
type ModelKey = (typeof MODELS)[number];
/** What `pnpm bench train` measures when --models is not given. */
const DEFAULT_MODELS: ModelKey[] = ['mixer', 'fnet', 'gmlp'];
/**
 * Forward multiply-accumulates per image (docs/reference.md "Compute per image" for the 64x64
 * reference models); a training step costs about 3x the forward pass, 2 FLOP per MAC: 6 FLOP
 * per MAC. FNet counts its 2D DFT as cos/sin matrix products (as Tessera computes it); Keras'
 * FFT does less work than that. ConvMixer-256/8 on 32x32: stem 0.8 M + 8 x (depthwise 5x5
 * 1.6 M + pointwise 16.8 M). ViT-small on 72x72 (144 tokens of 64): 8 x (projections 9.4 M +
 * attention 10.6 M + MLP 2.4 M) + patch projection 1.0 M + head 4.8 M.
 */
const FORWARD_MACS: Record<ModelKey, number> = { mixer: 20e6, fnet: 79e6, gmlp: 58e6, convmixer: 148e6, 'vit-small': 185e6 };
const trainFlopPerImage = (model: ModelKey) => 6 * FORWARD_MACS[model];

interface Measurement {
  model: ModelKey;
  framework: 'tessera' | 'keras';
  backend: string;
  params: number;
  batch: number;
  steps: number;
  stepMs: number[];
  medianStepMs: number;
  imagesPerSecond: number;
  peakRssMiB: number;
  /** Tensor bytes tracked by TF.js at the worst step (native memory is in the RSS). */
  peakTensorMiB?: number;
  note?: string;
  kernels?: KernelRow[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/* ------------------------------------------------------------------------------------------ */
/* Child: one model on one backend.                                                             */
/* ------------------------------------------------------------------------------------------ */

interface ProfiledKernel {
  name: string;
  kernelTimeMs: number | { error: string };
  inputShapes: number[][];
  outputShapes: number[][];
}

interface KernelRow {
  kernel: string;
  calls: number;
  ms: number;
  share: number;
  /** The costliest call's input shapes, to tell which layer it is. */
  worstShapes: string;
}

const CUSTOM_GRAD_SCOPE = 'unnamed scope';

/** Per-kernel totals of one profiled step, costliest first. */
function kernelTable(kernels: ProfiledKernel[]): KernelRow[] {
  const byName = new Map<string, { calls: number; ms: number; worst: number; shapes: string }>();
  let total = 0;
  for (const k of kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    // A tf.customGrad op is profiled as "unnamed scope" around kernels that are profiled too:
    // list it, but do not count its time twice.
    if (k.name !== CUSTOM_GRAD_SCOPE) total += ms;
    const row = byName.get(k.name) ?? { calls: 0, ms: 0, worst: -1, shapes: '' };
    row.calls++;
    row.ms += ms;
    if (ms > row.worst) {
      row.worst = ms;
      row.shapes = `${k.inputShapes.map((s) => `[${s}]`).join(' ')} -> ${k.outputShapes.map((s) => `[${s}]`).join(' ')}`;
    }
    byName.set(k.name, row);
  }
  return [...byName.entries()]
    .map(([kernel, r]) => ({
      kernel: kernel === CUSTOM_GRAD_SCOPE ? '(customGrad ops: their kernels are listed separately)' : kernel,
      calls: r.calls,
      ms: r.ms,
      share: total > 0 && kernel !== CUSTOM_GRAD_SCOPE ? r.ms / total : 0,
      worstShapes: r.shapes,
    }))
    .sort((a, b) => b.ms - a.ms);
}

async function measureOne(model: ModelKey, backend: string, batch: number, warmup: number, steps: number, profiling: boolean): Promise<Measurement> {
  const core = await import('../packages/core/src/index.ts');
  const engine = await import('../packages/core/src/engine/index.ts');
  const { builtinRegistries } = await import('../packages/builtins/src/index.ts');
  // tfjs is a dependency of core, not of the repository root: load core's copy (the same instance).
  const tf = createRequire(join(repoRoot, 'packages', 'core', 'package.json'))('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');

  const selection = await core.selectBackend(backend as 'auto', () => {});
  const registries = builtinRegistries();
  // The experiment API without its last step: the model for the shape the dataset declares, no data read.
  const experiment = core.loadValidatedExperiment(join(repoRoot, 'experiments', `${model}.yaml`), registries);
  const built = core.buildExperimentModel(experiment, registries, { seed: experiment.config.seed ?? 42 });
  const network = built.model;
  const inputShape = built.data.inputShape;
  const numClasses = built.data.numClasses;
  // ConvMixer ends in a softmax: its loss takes probabilities, as in its experiment.
  const fromLogits = (experiment.config.train as { loss?: { from_logits?: boolean } }).loss?.from_logits ?? true;
  const params = network.trainableWeights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
  const trainable = network.trainableWeights.map((w) => ({ name: w.originalName, variable: w.read() as import('@tensorflow/tfjs').Variable }));
  const variables = trainable.map((t) => t.variable);
  const optimizer = new engine.AdamW({ learning_rate: 0.001, weight_decay: 1e-4, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 });

  const x = tf.randomNormal([batch, ...inputShape]);
  const y = tf.randomUniform([batch], 0, numClasses, 'int32');
  const trainStep = async () => {
    const { value, grads } = tf.tidy(() =>
      tf.variableGrads(() => engine.crossEntropy(network.apply(x, { training: true }) as import('@tensorflow/tfjs').Tensor, y, { from_logits: fromLogits }), variables),
    );
    optimizer.applyGradients(trainable, variables.map((v) => grads[v.name]!), 0.001);
    const loss = (await value.data())[0]!;
    Object.values(grads).forEach((g) => g.dispose());
    value.dispose();
    if (!Number.isFinite(loss)) throw new Error(`loss is ${loss}`);
    // Waiting on a weight also waits for the optimizer's update on an asynchronous backend.
    await variables[variables.length - 1]!.data();
  };
  const stepMs: number[] = [];
  for (let step = 0; step < warmup + steps; step++) {
    const started = performance.now();
    await trainStep();
    if (step >= warmup) stepMs.push(performance.now() - started);
  }
  // One more step under the profiler, untimed: its peak is the true high-water mark of tensor
  // memory inside the step (activations kept for the backward pass included).
  const profile = await tf.profile(trainStep);
  const kernels = profiling ? kernelTable(profile.kernels as unknown as ProfiledKernel[]) : undefined;
  const medianStepMs = median(stepMs);
  return {
    model,
    framework: 'tessera',
    backend: selection.name,
    params,
    batch,
    steps,
    stepMs: stepMs.map((ms) => Math.round(ms)),
    medianStepMs,
    imagesPerSecond: (batch * 1000) / medianStepMs,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    peakTensorMiB: profile.peakBytes / 2 ** 20,
    note: selection.detail.summary,
    kernels,
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Parent: which backends, children, the Keras reference, results.md.                          */
/* ------------------------------------------------------------------------------------------ */

function runChild(args: string[]): { ok: true; value: unknown } | { ok: false; error: string } {
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' },
    maxBuffer: 64 * 2 ** 20,
  });
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (child.status === 0 && line) return { ok: true, value: JSON.parse(line.slice('RESULT '.length)) };
  const stderr = child.stderr.trim().split('\n').filter((l) => l.trim() !== '');
  return { ok: false, error: stderr.slice(-3).join(' | ') || `exit ${child.status}` };
}

async function availableBackends(requested: string[]): Promise<{ use: string[]; skipped: string[] }> {
  const probe = runChild(['--probe']);
  if (!probe.ok) throw new Error(`could not probe backends: ${probe.error}`);
  const reports = probe.value as { name: string; available: boolean; description: string }[];
  const use: string[] = [];
  const skipped: string[] = [];
  for (const report of reports) {
    const wanted = requested.includes('all') ? true : requested.includes('default') ? report.name !== 'cpu' : requested.includes(report.name);
    if (!wanted) {
      if (requested.includes('default') && report.name === 'cpu') skipped.push('cpu: plain-JS kernels, minutes per step at batch 128 (ask with --backends cpu)');
      continue;
    }
    if (report.available) use.push(report.name);
    else skipped.push(`${report.name}: ${report.description}`);
  }
  return { use, skipped };
}

/** The Keras 3 reference and the sgemm rate, from bench/.venv (created on first use). */
function runKeras(models: ModelKey[], batch: number, warmup: number, steps: number): { results: Measurement[]; sgemm?: number; versions?: string; error?: string } {
  const venv = ensureBenchVenv();
  if ('error' in venv) return { results: [], error: venv.error };
  const { python } = venv;
  const child = spawnSync(
    python,
    [join(benchDir, 'keras_reference.py'), '--models', models.join(','), '--batch', String(batch), '--warmup', String(warmup), '--steps', String(steps)],
    { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' }, maxBuffer: 64 * 2 ** 20 },
  );
  const lines = child.stdout.split('\n').filter((l) => l.startsWith('RESULT '));
  if (child.status !== 0 || lines.length === 0) {
    return { results: [], error: child.stderr.trim().split('\n').slice(-3).join(' | ') || `exit ${child.status}` };
  }
  const parsed = lines.map((l) => JSON.parse(l.slice('RESULT '.length)) as Record<string, unknown>);
  const sgemm = parsed.find((p) => p.kind === 'sgemm') as { gflops: number; versions: string } | undefined;
  return {
    results: parsed.filter((p) => p.kind === 'model').map((p) => ({ ...(p as unknown as Measurement), framework: 'keras' as const })),
    sgemm: sgemm?.gflops,
    versions: sgemm?.versions,
  };
}

/** The costliest kernels of one profiled step, as a markdown table. */
function formatKernels(m: Measurement, top = 12): string {
  const rows = (m.kernels ?? []).slice(0, top).map(
    (k) => `| ${k.kernel} | ${k.calls} | ${k.ms.toFixed(0)} | ${k.share > 0 ? `${(100 * k.share).toFixed(1)}%` : '-'} | ${k.worstShapes} |`,
  );
  const total = (m.kernels ?? []).reduce((sum, k) => sum + (k.share > 0 ? k.ms : 0), 0);
  return [
    `#### ${m.model} on ${m.backend} (kernels sum to ${total.toFixed(0)} ms; the step took ${m.medianStepMs.toFixed(0)} ms)`,
    '',
    '| kernel | calls | ms | share | costliest call: inputs -> output |',
    '|---|---:|---:|---:|---|',
    ...rows,
    '',
  ].join('\n');
}

function formatResults(
  tessera: Measurement[],
  keras: Measurement[],
  sgemm: number | undefined,
  notes: string[],
  command: string,
): string {
  const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const rows = [...tessera, ...keras].map((m) => {
    const reference = keras.find((k) => k.model === m.model);
    const ratio = m.framework === 'tessera' && reference ? `${fmt(m.imagesPerSecond / reference.imagesPerSecond, 2)}x` : m.framework === 'keras' ? '1.00x' : 'n/a';
    const gflops = (m.imagesPerSecond * trainFlopPerImage(m.model)) / 1e9;
    const fraction = sgemm ? `${fmt((100 * gflops) / sgemm, 1)}%` : 'n/a';
    return `| ${m.model} | ${m.framework === 'keras' ? 'Keras 3' : 'Tessera'} | ${m.backend} | ${fmt(m.params)} | ${fmt(m.medianStepMs)} | ${fmt(m.imagesPerSecond, 1)} | ${ratio} | ${fmt(gflops, 1)} | ${fraction} | ${fmt(m.peakRssMiB)}${m.peakTensorMiB !== undefined ? ` (${fmt(m.peakTensorMiB)})` : ''} |`;
  });
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return [
    '## Training throughput: Tessera vs the Keras 3 reference',
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${availableParallelism()} cores of ${cpu}` +
      `${sgemm ? `, sgemm (numpy float32 matmul, best of the run) ${fmt(sgemm, 1)} GFLOP/s` : ''}.`,
    `Reproduce: \`${command}\` (see docs/performance.md).`,
    '',
    'One training step = forward, sparse cross-entropy (on logits; on ConvMixer\'s softmax probabilities), gradients and the AdamW update, on random',
    `inputs of each model's size (64x64x3; ConvMixer 32x32x3, ViT-small 72x72x3) at batch ${tessera[0]?.batch ?? keras[0]?.batch ?? 128} (the data pipeline and augmentation are not timed, in either framework).`,
    'Step time is the median over the measured steps after warm-up. The Keras row is the faster of Keras\' default step and',
    '`jit_compile=True` (XLA), measured in the same run ("(XLA)" in its backend column when XLA won). "vs Keras" is images/s over that row\'s images/s.',
    'GFLOP/s counts 6 FLOP per forward multiply-accumulate (docs/reference.md: Mixer 20 M, FNet 79 M with the DFT as matrix products,',
    'gMLP 58 M per image); "of sgemm" divides it by the sgemm rate measured in the same run. On the native backend both',
    'frameworks compute FNet\'s DFT with an FFT (fewer FLOPs), so its GFLOP/s there is an effective rate. Peak memory is the process\'s',
    'maximum resident set (in parentheses: TF.js-tracked tensor memory at the worst step).',
    '',
    '| model | framework | backend | params | step ms | images/s | vs Keras | GFLOP/s | of sgemm | peak MiB |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    ...notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean' },
      probe: { type: 'boolean' },
      model: { type: 'string' },
      backend: { type: 'string' },
      models: { type: 'string', default: DEFAULT_MODELS.join(',') },
      backends: { type: 'string', default: 'default' },
      batch: { type: 'string', default: '128' },
      warmup: { type: 'string', default: '2' },
      steps: { type: 'string', default: '5' },
      keras: { type: 'boolean', default: true },
      profile: { type: 'boolean' },
      'no-keras': { type: 'boolean' },
      out: { type: 'string', default: join(benchDir, 'results.md') },
    },
    strict: true,
  });
  const batch = Number(values.batch);
  const warmup = Number(values.warmup);
  const steps = Number(values.steps);

  if (values.probe) {
    const core = await import('../packages/core/src/backend/index.ts');
    console.log(`RESULT ${JSON.stringify(await core.describeBackends())}`);
    return;
  }
  if (values.child) {
    const result = await measureOne(values.model as ModelKey, values.backend!, batch, warmup, steps, values.profile === true);
    console.log(`RESULT ${JSON.stringify(result)}`);
    return;
  }

  const models = values.models.split(',').map((m) => m.trim()) as ModelKey[];
  const bad = models.filter((m) => !MODELS.includes(m));
  if (bad.length > 0) throw new Error(`unknown model(s) ${bad.join(', ')}; expected some of ${MODELS.join(', ')}`);
  const { use, skipped } = await availableBackends(values.backends.split(',').map((b) => b.trim()));
  const notes = skipped.map((s) => `not measured: ${s}`);
  const tessera: Measurement[] = [];
  const profiles: string[] = [];
  for (const backend of use) {
    for (const model of models) {
      process.stdout.write(`bench train: ${model} on ${backend} ... `);
      const result = runChild([
        '--child', '--model', model, '--backend', backend,
        '--batch', String(batch), '--warmup', String(warmup), '--steps', String(steps),
        ...(values.profile ? ['--profile'] : []),
      ]);
      if (!result.ok) {
        console.log(`failed: ${result.error}`);
        notes.push(`${model} on ${backend} failed: ${result.error}`);
        continue;
      }
      const m = result.value as Measurement;
      console.log(`${m.imagesPerSecond.toFixed(1)} images/s (median step ${m.medianStepMs.toFixed(0)} ms, steps ${m.stepMs.join(' ')} ms), peak RSS ${m.peakRssMiB.toFixed(0)} MiB`);
      tessera.push(m);
      if (m.kernels) profiles.push(formatKernels(m));
      if (!notes.some((n) => n.startsWith(`${backend}:`)) && m.note) notes.push(`${backend}: ${m.note}`);
    }
  }
  let keras: Measurement[] = [];
  let sgemm: number | undefined;
  if (values.keras && !values['no-keras']) {
    console.log('bench train: the Keras 3 reference (bench/keras_reference.py) ...');
    const k = runKeras(models, batch, warmup, steps);
    if (k.error) notes.push(`Keras reference failed: ${k.error}`);
    keras = k.results;
    sgemm = k.sgemm;
    if (k.versions) notes.push(`Keras reference: ${k.versions}`);
    for (const m of keras) {
      console.log(`  keras ${m.model}: ${m.imagesPerSecond.toFixed(1)} images/s (median step ${m.medianStepMs.toFixed(0)} ms; ${m.note})`);
      if (m.note) notes.push(`Keras ${m.model}: ${m.note} (default vs jit_compile=True; the faster is the Keras row)`);
    }
    if (sgemm) console.log(`  sgemm: ${sgemm.toFixed(1)} GFLOP/s`);
  }
  notes.push(
    `${steps} measured steps after ${warmup} warm-up steps per model; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores at the end: ` +
      'on a shared machine expect noise of 10-30% or more; rerun on an idle machine for numbers to quote.',
  );
  const command = `pnpm bench train -- --models ${models.join(',')} --backends ${values.backends} --batch ${batch} --warmup ${warmup} --steps ${steps}${values.keras && !values['no-keras'] ? '' : ' --no-keras'}`;
  const profileSection = profiles.length > 0 ? `\n### Where a training step's time goes (one profiled step)\n\n${profiles.join('\n')}` : '';
  if (profiles.length > 0) console.log(profileSection);
  const section = formatResults(tessera, keras, sgemm, notes, command + (values.profile ? ' --profile' : '')) + profileSection;
  // Replace only this benchmark's section: other benchmarks (bench/data.ts) keep theirs.
  const previous = existsSync(values.out) ? readFileSync(values.out, 'utf8') : '# Benchmarks\n';
  const pattern = /## Training throughput[^\n]*\n[\s\S]*?(?=\n## |$)/;
  writeFileSync(values.out, pattern.test(previous) ? previous.replace(pattern, section.trimEnd() + '\n') : `${previous.trimEnd()}\n\n${section}`);
  console.log(`bench train: wrote ${values.out}`);
}

main().catch((error: unknown) => {
  console.error(`bench train: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
