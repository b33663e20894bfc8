import type * as tf from '@tensorflow/tfjs';

/** One line of a Keras-style summary. */
export interface SummaryRow {
  name: string;
  /** The layer's class without Tessera's prefix: Dense, LayerNorm, Add, ... */
  type: string;
  /** Output shape with null for the batch; "multiple" for a shared layer applied to different shapes. */
  outputShape: (number | null)[] | 'multiple';
  params: number;
  trainableParams: number;
  /** How many times the layer is applied (2 for a shared module used twice). */
  uses: number;
}

export interface ModelSummary {
  name: string;
  inputShape: (number | null)[];
  layers: SummaryRow[];
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
}

const sizeOf = (shape: readonly (number | null)[]) => shape.reduce<number>((a, b) => a * (b ?? 1), 1);

/** Layers, output shapes and parameter counts of a built model, in graph order. */
export function modelSummary(model: tf.LayersModel): ModelSummary {
  const layers = model.layers.map((layer): SummaryRow => {
    let outputShape: SummaryRow['outputShape'];
    try {
      outputShape = layer.outputShape as (number | null)[];
    } catch {
      outputShape = 'multiple';
    }
    const trainable = layer.trainableWeights.reduce((n, w) => n + sizeOf(w.shape), 0);
    return {
      name: layer.name,
      type: layer.getClassName().replace(/^Tessera/, ''),
      outputShape,
      params: layer.countParams(),
      trainableParams: trainable,
      // Each application adds an inbound node; the input layer has one and no application.
      uses: Math.max(1, (layer as unknown as { inboundNodes: unknown[] }).inboundNodes.length),
    };
  });
  const trainableParams = model.trainableWeights.reduce((n, w) => n + sizeOf(w.shape), 0);
  const totalParams = model.weights.reduce((n, w) => n + sizeOf(w.shape), 0);
  return {
    name: model.name,
    inputShape: (model.inputs[0]?.shape ?? []) as (number | null)[],
    layers,
    totalParams,
    trainableParams,
    nonTrainableParams: totalParams - trainableParams,
  };
}

const formatShape = (shape: SummaryRow['outputShape']) =>
  shape === 'multiple' ? 'multiple' : `(${shape.map((s) => (s === null ? 'None' : s)).join(', ')})`;
const formatCount = (n: number) => n.toLocaleString('en-US');

/** The summary as a Keras-style text table. */
export function formatSummary(summary: ModelSummary): string {
  const header = ['Layer (type)', 'Output Shape', 'Param #'];
  const rows = summary.layers.map((row) => [
    `${row.name} (${row.type})${row.uses > 1 ? ` x${row.uses}` : ''}`,
    formatShape(row.outputShape),
    formatCount(row.params),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)) + 2);
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 2 ? cell.padStart(widths[i]! - 2) : cell.padEnd(widths[i]!))).join('').trimEnd();
  const rule = (char: string) => char.repeat(widths.reduce((a, b) => a + b, 0) - 2);
  return [
    `Model: "${summary.name}"`,
    rule('━'),
    line(header),
    rule('━'),
    ...rows.map(line),
    rule('━'),
    ` Total params: ${formatCount(summary.totalParams)}`,
    ` Trainable params: ${formatCount(summary.trainableParams)}`,
    ` Non-trainable params: ${formatCount(summary.nonTrainableParams)}`,
    '',
  ].join('\n');
}
