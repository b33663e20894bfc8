// The fused kernels (packages/core/src/backend/kernels/) against the composite TF.js ops they
// replace, side by side, through the primitives the models use.
//
//   pnpm bench kernels                                          tensorflow and wasm, where they load
//   pnpm bench kernels -- --backends wasm --repeats 10 --warmup 2 --no-write
//
// For each backend a child process times geluExact, layerNorm and the Dropout layer (training
// mode, rate 0.2 as in the Mixer) on float32 [128, 64, 256] inputs, and GELU and dropout also on
// [128, 256, 64] (the Mixer's token-mixing shape): the forward pass, and forward + backward
// (tf.grads with a given dy). The composite path is reached by unregistering the backend's fused
// kernels around the call (as packages/models/src/primitives/fused-paths.test.ts does); the two
// paths alternate within one process, which goes first alternating too, and each reports its
// median after a warm-up. Writes the table under "## Fused kernels" in bench/results.md
// (replacing that section only).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);

/** The Mixer's dropout rate (experiments/ config), so the mask costs what it costs in training. */
const DROPOUT_RATE = 0.2;
/** The reference's LayerNorm epsilon (docs/reference.md). */
const EPSILON = 1e-6;
const WIDE: [number, number, number] = [128, 64, 256];
const TOKEN_MIXING: [number, number, number] = [128, 256, 64];

type Op = 'gelu' | 'layer_norm' | 'dropout';
type Pass = 'forward' | 'forward+backward';

interface Row {
  op: Op;
  shape: number[];
  pass: Pass;
  compositeMs: number;
  fusedMs: number;
  /**
   * The largest |fused - composite| over the outputs (and gradients, for forward+backward), each
   * relative to the largest |composite| value of that output.
   */
  maxDifference: number;
}

interface ChildResult {
  backend: string;
  summary: string;
  rows: Row[];
  notes: string[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/* ------------------------------------------------------------------------------------------ */
/* Child: one backend.                                                                          */
/* ------------------------------------------------------------------------------------------ */

async function measureBackend(backend: string, warmup: number, repeats: number): Promise<ChildResult> {
  const core = await import('../packages/core/src/index.ts');
  const { geluExact } = await import('../packages/models/src/primitives/activation.ts');
  const { layerNorm } = await import('../packages/models/src/primitives/layer_norm.ts');
  const { Dropout } = await import('../packages/models/src/primitives/dropout.ts');
  // tfjs is a dependency of the packages, not of the repository root: load core's copy (the same instance).
  const tf = createRequire(join(repoRoot, 'packages', 'core', 'package.json'))('@tensorflow/tfjs') as typeof import('../packages/core/node_modules/@tensorflow/tfjs');
  type Tensor = ReturnType<typeof tf.tensor>;

  const selection = await core.selectBackend(backend as 'wasm', () => {});
  const backendName = tf.getBackend();
  const fusedNames: string[] = Object.values(core.FUSED_KERNELS);
  const registered = fusedNames.filter((name) => tf.getKernel(name, backendName) !== undefined);
  const notes: string[] = [];

  /** Runs `fn` with the backend's fused kernels unregistered: the primitives take their composite ops. */
  function composite<T>(fn: () => T): T {
    const saved = registered.map((name) => tf.getKernel(name, backendName)!);
    saved.forEach((config) => tf.unregisterKernel(config.kernelName, backendName));
    try {
      return fn();
    } finally {
      saved.forEach((config) => tf.registerKernel(config));
    }
  }

  // The dropout layer draws its per-call seed from Math.random: pin it so both paths use one mask.
  const dropoutLayer = new Dropout({ rate: DROPOUT_RATE, seed: 7 });
  const dropout = (x: Tensor) => {
    const original = Math.random;
    Math.random = () => 0.375;
    try {
      return dropoutLayer.apply(x, { training: true }) as Tensor;
    } finally {
      Math.random = original;
    }
  };

  interface Case {
    op: Op;
    shape: [number, number, number];
    /** The fused kernels this op's two passes use. */
    kernels: string[];
    inputs: Tensor[];
    f: (...xs: Tensor[]) => Tensor;
  }
  const randomInputs = (shape: number[], seed: number) => [tf.randomNormal(shape, 0, 1, 'float32', seed)];
  const channels = WIDE[2];
  const cases: Case[] = [
    ...[WIDE, TOKEN_MIXING].map((shape, i) => ({ op: 'gelu' as const, shape, kernels: [core.FUSED_KERNELS.geluExact], inputs: randomInputs(shape, 1 + i), f: geluExact })),
    {
      op: 'layer_norm',
      shape: WIDE,
      kernels: [core.FUSED_KERNELS.layerNorm, core.FUSED_KERNELS.layerNormGrad],
      inputs: [tf.randomNormal(WIDE, 0.5, 2, 'float32', 3), tf.randomNormal([channels], 1, 0.1, 'float32', 4), tf.randomNormal([channels], 0, 0.1, 'float32', 5)],
      f: (x, gamma, beta) => layerNorm(x, gamma!, beta!, 2, EPSILON),
    },
    ...[WIDE, TOKEN_MIXING].map((shape, i) => ({ op: 'dropout' as const, shape, kernels: [core.FUSED_KERNELS.dropout], inputs: randomInputs(shape, 6 + i), f: dropout })),
  ];

  const rows: Row[] = [];
  const tensorsBefore = tf.memory().numTensors;
  for (const c of cases) {
    const missing = c.kernels.filter((name) => !registered.includes(name));
    if (missing.length > 0) {
      const note = `${c.op} [${c.shape.join(', ')}]: not measured, ${backendName} has no fused ${missing.join(', ')}`;
      if (!notes.includes(note)) notes.push(note);
      continue;
    }
    const dy = tf.randomNormal(c.shape, 0, 1, 'float32', 11);
    const passes: Record<Pass, () => Tensor[]> = {
      forward: () => [tf.tidy(() => c.f(...c.inputs))],
      'forward+backward': () => tf.grads((...xs: Tensor[]) => c.f(...xs))(c.inputs, dy),
    };
    for (const pass of Object.keys(passes) as Pass[]) {
      const run = passes[pass];
      // Both paths compute the same thing: check once, untimed, so a broken path cannot look fast.
      const fusedOut = run();
      const compositeOut = composite(run);
      const maxDifference = Math.max(
        ...fusedOut.map((t, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(t, compositeOut[i]!))).dataSync()[0]! / tf.max(tf.abs(compositeOut[i]!)).dataSync()[0]!)),
      );
      tf.dispose([...fusedOut, ...compositeOut]);

      const times = { composite: [] as number[], fused: [] as number[] };
      // The CPU backends (tensorflow, wasm) run each op before returning, so the clock stops when the work is done.
      const timed = () => {
        const started = performance.now();
        const out = run();
        const ms = performance.now() - started;
        tf.dispose(out);
        return ms;
      };
      // Unregistering the fused kernels happens outside the clock.
      const time = (path: 'composite' | 'fused', keep: boolean) => {
        const ms = path === 'composite' ? composite(timed) : timed();
        if (keep) times[path].push(ms);
      };
      for (let i = 0; i < warmup + repeats; i++) {
        const order = i % 2 === 0 ? (['composite', 'fused'] as const) : (['fused', 'composite'] as const);
        for (const path of order) time(path, i >= warmup);
      }
      rows.push({ op: c.op, shape: c.shape, pass, compositeMs: median(times.composite), fusedMs: median(times.fused), maxDifference });
      const r = rows.at(-1)!;
      console.error(`  ${backendName} ${r.op} [${r.shape}] ${pass}: composite ${r.compositeMs.toFixed(2)} ms, fused ${r.fusedMs.toFixed(2)} ms`);
    }
    dy.dispose();
  }
  tf.dispose(cases.flatMap((c) => c.inputs));

  const leaked = tf.memory().numTensors - (tensorsBefore - cases.reduce((n, c) => n + c.inputs.length, 0));
  if (leaked !== 0) throw new Error(`${leaked} tensors left behind on ${backendName}`);
  const lost = registered.filter((name) => tf.getKernel(name, backendName) === undefined);
  if (lost.length > 0) throw new Error(`fused kernels left unregistered on ${backendName}: ${lost.join(', ')}`);
  return { backend: selection.name, summary: selection.detail.summary, rows, notes };
}

/* ------------------------------------------------------------------------------------------ */
/* Parent: a child per backend, then results.md.                                               */
/* ------------------------------------------------------------------------------------------ */

function runChild(args: string[]): { ok: true; value: ChildResult } | { ok: false; error: string } {
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], {
    encoding: 'utf8',
    // Progress goes to stderr, shown as it comes; stdout carries the RESULT line.
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' },
    maxBuffer: 16 * 2 ** 20,
  });
  const line = child.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (child.status === 0 && line) return { ok: true, value: JSON.parse(line.slice('RESULT '.length)) as ChildResult };
  const error = child.stdout.split('\n').find((l) => l.startsWith('ERROR '))?.slice('ERROR '.length);
  return { ok: false, error: error ?? `exit ${child.status ?? child.signal}` };
}

function formatSection(results: ChildResult[], notes: string[], command: string, warmup: number, repeats: number): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const rows = results.flatMap((r) =>
    r.rows.map(
      (row) =>
        `| ${r.backend} | ${row.op} | [${row.shape.join(', ')}] | ${row.pass} | ${row.compositeMs.toFixed(2)} | ${row.fusedMs.toFixed(2)} | ` +
        `${(row.compositeMs / row.fusedMs).toFixed(2)}x | ${row.maxDifference.toExponential(1)} |`,
    ),
  );
  return [
    '## Fused kernels',
    '',
    `\`${command}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus().length} x ${cpu}, Node ${process.version}, ` +
      `load average ${loadavg()[0]!.toFixed(1)} at the end.`,
    'The primitives geluExact, layerNorm (last axis, epsilon 1e-6) and the Dropout layer (training, rate 0.2) on float32 inputs,',
    'through the backend\'s fused kernels (backend/kernels/) and through the composite TF.js ops they fall back to (the fused',
    'kernels unregistered for the call). forward+backward is tf.grads with a given dy (for layer_norm: of x, gamma and beta).',
    `Median of ${repeats} runs after ${warmup} warm-up runs, the two paths alternating in one process; speed-up = composite / fused.`,
    'rel. diff is the largest difference between the two paths\' outputs (and gradients), relative to the largest value of each:',
    'a check that both compute the same (0 for dropout: the same mask from the same seed on every path).',
    '',
    '| backend | op | shape | pass | composite ms | fused ms | speed-up | rel. diff |',
    '|---|---|---|---|---:|---:|---:|---:|',
    ...rows,
    '',
    ...results.map((r) => `- ${r.backend}: ${r.summary}`),
    ...notes.map((n) => `- ${n}`),
    '- On a shared machine expect noise of 10-30%; rerun on an idle machine for numbers to quote.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const { didYouMean } = await import('../packages/core/src/registry/registry.ts');
  const options = {
    child: { type: 'boolean' },
    backend: { type: 'string' },
    backends: { type: 'string', default: 'tensorflow,wasm' },
    repeats: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    out: { type: 'string', default: join(benchDir, 'results.md') },
    'no-write': { type: 'boolean', default: false },
  } as const;
  const args = process.argv.slice(2).filter((arg) => arg !== '--');
  const unknownOption = args.find((arg) => arg.startsWith('--') && !(arg.slice(2).split('=')[0]! in options));
  if (unknownOption) {
    const suggestion = didYouMean(unknownOption.slice(2), Object.keys(options));
    throw new Error(`unknown option ${unknownOption}${suggestion ? ` (did you mean --${suggestion}?)` : ''}; options: --backends, --repeats, --warmup, --out, --no-write`);
  }
  const { values } = parseArgs({ args, options, strict: true });
  const repeats = Number(values.repeats);
  const warmup = Number(values.warmup);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got "${values.repeats}"`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be a non-negative integer, got "${values.warmup}"`);

  if (values.child) {
    try {
      console.log(`RESULT ${JSON.stringify(await measureBackend(values.backend!, warmup, repeats))}`);
    } catch (error) {
      console.log(`ERROR ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
      process.exitCode = 1;
    }
    return;
  }

  const backends = values.backends.split(',').map((b) => b.trim()).filter(Boolean);
  const known = ['tensorflow', 'wasm', 'cpu'];
  const unknown = backends.filter((b) => !known.includes(b));
  if (unknown.length > 0) {
    const suggestions = unknown.map((b) => didYouMean(b, known)).filter(Boolean);
    throw new Error(
      `--backends: unknown backend(s) ${unknown.join(', ')}${suggestions.length > 0 ? ` (did you mean ${suggestions.join(', ')}?)` : ''}; expected some of ${known.join(', ')}`,
    );
  }
  const results: ChildResult[] = [];
  const notes: string[] = [];
  for (const backend of backends) {
    console.log(`bench kernels: ${backend} ...`);
    const result = runChild(['--child', '--backend', backend, '--warmup', String(warmup), '--repeats', String(repeats)]);
    if (!result.ok) {
      console.log(`bench kernels: ${backend} not measured: ${result.error}`);
      notes.push(`${backend}: not measured (${result.error})`);
      continue;
    }
    results.push(result.value);
    notes.push(...result.value.notes);
  }
  const command = `pnpm bench kernels -- --backends ${backends.join(',')} --repeats ${repeats} --warmup ${warmup}`;
  const section = formatSection(results, notes, command, warmup, repeats);
  if (values['no-write']) {
    console.log(section);
  } else {
    const previous = existsSync(values.out) ? readFileSync(values.out, 'utf8') : '# Benchmarks\n';
    // Replace only our own section, so other benchmarks' results stay.
    const pattern = /## Fused kernels\n[\s\S]*?(?=\n## |$)/;
    writeFileSync(values.out, pattern.test(previous) ? previous.replace(pattern, section.trimEnd() + '\n') : `${previous.trimEnd()}\n\n${section}`);
    console.log(section);
    console.log(`bench kernels: wrote the "Fused kernels" section of ${values.out}`);
  }
  if (results.length === 0) process.exit(1);
}

main().catch((error: unknown) => {
  console.error(`bench kernels: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
