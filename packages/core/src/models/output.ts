import type { NamedImages } from './inputs.ts';
import type { Predictor, TopK } from './predictor.ts';

/* ------------------------------------------------------------------------------------------ *
 * Predictions as users read them: a top-k table, JSON, CSV (one row per image, a probability  *
 * column per class) or a NumPy .npy array of probabilities.                                   *
 * ------------------------------------------------------------------------------------------ */

export interface Prediction {
  input: string;
  /** The label stored with a record, when the input had one. */
  label?: number;
  top: TopK;
}

export function predictionsOf(predictor: Predictor, images: NamedImages, probabilities: Float32Array, k: number): Prediction[] {
  return images.names.map((input, i) => ({
    input,
    ...(images.labels[i] !== undefined ? { label: images.labels[i] } : {}),
    top: predictor.topK(probabilities, i, k),
  }));
}

/** One line per image: `name  class 81.23%  class 10.02% ...`. */
export function formatPredictionTable(predictions: readonly Prediction[], classes: readonly string[]): string {
  const width = Math.min(48, Math.max(5, ...predictions.map((p) => p.input.length)));
  const k = predictions[0]?.top.indices.length ?? 1;
  const labelled = predictions.some((p) => p.label !== undefined);
  const header = ['input'.padEnd(width), ...(labelled ? ['label'.padEnd(16)] : []), ...Array.from({ length: k }, (_, i) => `top-${i + 1}`.padEnd(24))];
  const lines = [header.join('  ').trimEnd()];
  for (const p of predictions) {
    const cells = [p.input.length > width ? `...${p.input.slice(-(width - 3))}` : p.input.padEnd(width)];
    if (labelled) cells.push((p.label !== undefined ? (classes[p.label] ?? String(p.label)) : '').padEnd(16));
    p.top.classes.forEach((name, i) => cells.push(`${name} ${(100 * p.top.probabilities[i]!).toFixed(2)}%`.padEnd(24)));
    lines.push(cells.join('  ').trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

export function predictionsJson(model: string, classes: readonly string[], predictions: readonly Prediction[], probabilities: Float32Array): unknown {
  const n = classes.length;
  return {
    model,
    classes,
    predictions: predictions.map((p, i) => ({
      input: p.input,
      ...(p.label !== undefined ? { label: p.label } : {}),
      top_k: p.top.indices.map((index, j) => ({ class: p.top.classes[j], index, probability: p.top.probabilities[j] })),
      probabilities: Array.from(probabilities.subarray(i * n, (i + 1) * n)),
    })),
  };
}

function csvCell(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** input, label, prediction, probability, then one column per class. */
export function predictionsCsv(classes: readonly string[], predictions: readonly Prediction[], probabilities: Float32Array): string {
  const n = classes.length;
  const rows = [['input', 'label', 'prediction', 'probability', ...classes].map(csvCell).join(',')];
  predictions.forEach((p, i) => {
    const row = Array.from(probabilities.subarray(i * n, (i + 1) * n), (v) => String(v));
    rows.push([p.input, p.label ?? '', p.top.classes[0]!, p.top.probabilities[0]!, ...row].map(csvCell).join(','));
  });
  return `${rows.join('\n')}\n`;
}

/** A float32 array as an .npy file (format 1.0, little-endian, C order). */
export function npy(values: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(10 + header.length + values.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 10 + header.length);
  return out;
}
