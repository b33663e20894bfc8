import type { TopLevelSpec } from 'vega-lite';

/**
 * Learning curves as PNG artifacts: a Vega-Lite line chart (train vs validation per epoch)
 * rendered headless by Vega to SVG, then rasterised by resvg. No browser, no canvas package.
 */
export interface LearningCurve {
  svg: string;
  png: Uint8Array;
}

/** Width of every PNG in pixels; the height follows the chart's aspect ratio. */
export const PLOT_WIDTH = 800;

const SPLITS = [
  ['train', ''],
  ['validation', 'val_'],
] as const;

/** One point per epoch and split that has `metric` (`metric` for train, `val_<metric>` for validation). */
export function curvePoints(history: Record<string, number>[], metric: string): { epoch: number; split: string; value: number }[] {
  const points: { epoch: number; split: string; value: number }[] = [];
  history.forEach((logs, index) => {
    for (const [split, prefix] of SPLITS) {
      const value = logs[`${prefix}${metric}`];
      if (value !== undefined && Number.isFinite(value)) points.push({ epoch: index + 1, split, value });
    }
  });
  return points;
}

export function learningCurveSpec(history: Record<string, number>[], metric: string, title = metric): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 480,
    height: 280,
    background: 'white',
    data: { values: curvePoints(history, metric) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
      y: { field: 'value', type: 'quantitative', title: metric, scale: { zero: false } },
      color: { field: 'split', type: 'nominal', title: null, sort: SPLITS.map(([split]) => split) },
    },
  };
}

/** The chart of `metric` over epochs, or undefined when no epoch has it. */
export async function renderLearningCurve(history: Record<string, number>[], metric: string): Promise<LearningCurve | undefined> {
  if (curvePoints(history, metric).length === 0) return undefined;
  return renderChart(learningCurveSpec(history, metric));
}

/** Any Vega-Lite chart as SVG and as a PLOT_WIDTH-wide PNG. */
export async function renderChart(spec: TopLevelSpec): Promise<LearningCurve> {
  // Loaded on first use: Vega alone takes ~0.7 s to import, which every `exp` command would pay.
  const [vega, { compile }, { Resvg }] = await Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const png = new Resvg(svg, {
      fitTo: { mode: 'width', value: PLOT_WIDTH },
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    })
      .render()
      .asPng();
    return { svg, png: new Uint8Array(png) };
  } finally {
    view.finalize();
  }
}

/**
 * A confusion matrix as a heatmap: true class down, predicted class across, each cell's share
 * of its true class as the colour (so rare classes show as clearly as common ones), counts as
 * text when the matrix is small enough to read them.
 */
export function confusionMatrixSpec(matrix: readonly (readonly number[])[], classes: readonly string[], title = 'confusion matrix'): TopLevelSpec {
  const values: { actual: string; predicted: string; count: number; share: number }[] = [];
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => values.push({ actual: classes[i]!, predicted: classes[j]!, count, share: count / total }));
  });
  const n = classes.length;
  const side = Math.max(200, Math.min(640, n * 24));
  const showCounts = n <= 20;
  const axis = { labelLimit: 90, ...(n > 40 ? { labels: false, ticks: false } : {}) };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: side,
    height: side,
    background: 'white',
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: [...classes], title: 'predicted', axis },
      y: { field: 'actual', type: 'nominal', sort: [...classes], title: 'true', axis },
    },
    layer: [
      { mark: 'rect', encoding: { color: { field: 'share', type: 'quantitative', title: 'share of row', scale: { domain: [0, 1], range: ['#ffffff', '#08519c'] } } } },
      ...(showCounts
        ? [
            {
              mark: { type: 'text' as const, fontSize: 10 },
              encoding: {
                text: { field: 'count', type: 'quantitative' as const },
                color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
              },
            },
          ]
        : []),
    ],
  } as TopLevelSpec;
}

/** The curves every run records: `plots/<metric>.png` for loss and accuracy. */
export async function learningCurveArtifacts(history: Record<string, number>[]): Promise<Map<string, Uint8Array>> {
  const artifacts = new Map<string, Uint8Array>();
  for (const metric of ['loss', 'accuracy']) {
    const curve = await renderLearningCurve(history, metric);
    if (curve) artifacts.set(`plots/${metric}.png`, curve.png);
  }
  return artifacts;
}
