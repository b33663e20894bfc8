import { Resvg } from '@resvg/resvg-js';
import { describe, expect, it } from 'vitest';
import { PLOT_WIDTH, curvePoints, learningCurveArtifacts, renderLearningCurve } from './plots.ts';

const history = [
  { loss: 2.0, val_loss: 2.2, accuracy: 0.3, val_accuracy: 0.25 },
  { loss: 1.5, val_loss: 1.9, accuracy: 0.5, val_accuracy: 0.4 },
  { loss: 1.1, val_loss: 1.8, accuracy: 0.7, val_accuracy: 0.45 },
];

/** Width and height from a PNG's IHDR chunk (bytes 16-23, big-endian). */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Pixels within `tolerance` of an RGB colour in RGBA data. */
function countColour(rgba: Uint8Array, [r, g, b]: number[], tolerance = 12): number {
  let count = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    if (Math.abs(rgba[i]! - r!) <= tolerance && Math.abs(rgba[i + 1]! - g!) <= tolerance && Math.abs(rgba[i + 2]! - b!) <= tolerance) count++;
  }
  return count;
}

describe('learning curves', () => {
  it('takes one point per epoch and split, skipping missing and non-finite values', () => {
    expect(curvePoints([{ loss: 2, val_loss: 3 }, { loss: NaN, val_loss: 2.5 }, { loss: 1 }], 'loss')).toEqual([
      { epoch: 1, split: 'train', value: 2 },
      { epoch: 1, split: 'validation', value: 3 },
      { epoch: 2, split: 'validation', value: 2.5 },
      { epoch: 3, split: 'train', value: 1 },
    ]);
    expect(curvePoints(history, 'top5_accuracy')).toEqual([]);
  });

  it('renders a real PNG with both lines, a title and a legend', async () => {
    const curve = (await renderLearningCurve(history, 'loss'))!;
    expect([...curve.png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(new TextDecoder().decode(curve.png.subarray(12, 16))).toBe('IHDR');
    const { width, height } = pngSize(curve.png);
    expect(width).toBe(PLOT_WIDTH);
    expect(height).toBeGreaterThan(300);
    expect(height).toBeLessThan(width);
    // Vega's default category colours: train is #4c78a8, validation #f58518 (sorted in that order).
    const pixels = new Resvg(curve.svg, { fitTo: { mode: 'width', value: PLOT_WIDTH } }).render().pixels;
    expect(countColour(pixels, [0x4c, 0x78, 0xa8])).toBeGreaterThan(200);
    expect(countColour(pixels, [0xf5, 0x85, 0x18])).toBeGreaterThan(200);
    expect(curve.svg).toContain('>validation<');
    expect(curve.svg).toContain('>train<');
    expect(curve.svg).toMatch(/<text[^>]*>loss<\/text>/);
  });

  it('makes plots/loss.png and plots/accuracy.png, and nothing for a metric no epoch has', async () => {
    const artifacts = await learningCurveArtifacts(history);
    expect([...artifacts.keys()]).toEqual(['plots/loss.png', 'plots/accuracy.png']);
    expect(await learningCurveArtifacts([{ loss: 1 }])).toHaveProperty('size', 1);
    expect(await renderLearningCurve([], 'loss')).toBeUndefined();
  });
});
