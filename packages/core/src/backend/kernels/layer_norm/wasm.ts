import * as tf from '@tensorflow/tfjs';
import type { HeapBackend } from '../../wasm/heap.ts';
import { simdKernels, sumInBlocks } from '../../wasm/simd/module.ts';
import { layerNormInto } from './reference.ts';

/* TesseraLayerNorm and TesseraLayerNormGrad on the wasm heap: the SIMD functions of simd.ts where the rows are a multiple of four values long, these JavaScript loops elsewhere. */

/** Rows and columns of a LayerNorm input: the columns are gamma's length, the rows the rest. */
function rowsOf(x: tf.TensorInfo, gamma: tf.TensorInfo): { rows: number; columns: number } {
  const columns = gamma.shape[0]!;
  return { rows: tf.util.sizeFromShape(x.shape) / columns, columns };
}

/** A LayerNorm input's layout: `rows` rows of `columns` values. */
interface Rows {
  rows: number;
  columns: number;
}

/** TesseraLayerNorm: in WebAssembly SIMD where the rows are a multiple of four values long (every model here), else in JavaScript. */
export function layerNorm({ inputs, backend, attrs }: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const gammaInfo = inputs.gamma as tf.TensorInfo;
  const epsilon = (attrs as unknown as { epsilon: number }).epsilon;
  const shape = rowsOf(x, gammaInfo);
  const heap = backend as HeapBackend;
  const yInfo = heap.makeOutput(x.shape, 'float32');
  const meanInfo = heap.makeOutput([shape.rows], 'float32');
  const rstdInfo = heap.makeOutput([shape.rows], 'float32');
  const [input, gamma, beta, y, means, rstds] = [x, gammaInfo, inputs.beta as tf.TensorInfo, yInfo, meanInfo, rstdInfo].map((info) => heap.typedArrayFromHeap(info)) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const simd = simdKernels(heap);
  if (simd && shape.columns % 4 === 0) {
    simd.layerNorm(input.byteOffset, y.byteOffset, means.byteOffset, rstds.byteOffset, gamma.byteOffset, beta.byteOffset, shape.rows, shape.columns, epsilon);
  } else {
    layerNormInto(input, gamma, beta, epsilon, { y, mean: means, rstd: rstds });
  }
  return [yInfo, meanInfo, rstdInfo];
}

/** The views TesseraLayerNormGrad reads and writes. */
interface LayerNormGradViews {
  dy: Float32Array;
  input: Float32Array;
  means: Float32Array;
  rstds: Float32Array;
  gamma: Float32Array;
  dx: Float32Array;
}

/**
 * TesseraLayerNormGrad in JavaScript (float64), where the SIMD kernel cannot run: one pass for a
 * row's two means and the dgamma, dbeta sums, one for dx.
 */
function layerNormGradRows({ dy, input, means, rstds, gamma, dx }: LayerNormGradViews, dgamma: Float64Array, dbeta: Float64Array, { rows, columns }: Rows): void {
  for (let row = 0; row < rows; row++) {
    const offset = row * columns;
    const mean = means[row]!;
    const rstd = rstds[row]!;
    let sumG = 0;
    let sumGXhat = 0;
    for (let c = 0; c < columns; c++) {
      const upstream = dy[offset + c]!;
      const xhat = (input[offset + c]! - mean) * rstd;
      const g = upstream * gamma[c]!;
      sumG += g;
      sumGXhat += g * xhat;
      dgamma[c]! += upstream * xhat;
      dbeta[c]! += upstream;
    }
    const meanG = sumG / columns;
    const meanGXhat = sumGXhat / columns;
    for (let c = 0; c < columns; c++) {
      const xhat = (input[offset + c]! - mean) * rstd;
      dx[offset + c] = rstd * (dy[offset + c]! * gamma[c]! - meanG - xhat * meanGXhat);
    }
  }
}

/** TesseraLayerNormGrad: in WebAssembly SIMD where the rows are a multiple of four values long, else in JavaScript; dgamma and dbeta summed in float64. */
export function layerNormGrad({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const gammaInfo = inputs.gamma as tf.TensorInfo;
  const shape = rowsOf(x, gammaInfo);
  const { rows, columns } = shape;
  const heap = backend as HeapBackend;
  const dxInfo = heap.makeOutput(x.shape, 'float32');
  const dgammaInfo = heap.makeOutput(gammaInfo.shape, 'float32');
  const dbetaInfo = heap.makeOutput(gammaInfo.shape, 'float32');
  const view = (info: tf.TensorInfo) => heap.typedArrayFromHeap(info);
  const views: LayerNormGradViews = {
    dy: view(inputs.dy as tf.TensorInfo),
    input: view(x),
    means: view(inputs.mean as tf.TensorInfo),
    rstds: view(inputs.rstd as tf.TensorInfo),
    gamma: view(gammaInfo),
    dx: view(dxInfo),
  };
  const [dgammaOut, dbetaOut] = [view(dgammaInfo), view(dbetaInfo)];
  const dgamma = new Float64Array(columns);
  const dbeta = new Float64Array(columns);
  const simd = simdKernels(heap);
  if (simd && columns % 4 === 0) {
    const { dy, input, means, rstds, gamma, dx } = views;
    // The outputs serve as each block's float32 accumulators until the float64 totals are written.
    sumInBlocks(rows, [dgammaOut, dbetaOut], [dgamma, dbeta], (row, count) => {
      const skip = 4 * row * columns;
      simd.layerNormGrad(dy.byteOffset + skip, input.byteOffset + skip, means.byteOffset + 4 * row, rstds.byteOffset + 4 * row, gamma.byteOffset, dx.byteOffset + skip, dgammaOut.byteOffset, dbetaOut.byteOffset, count, columns);
    });
  } else {
    layerNormGradRows(views, dgamma, dbeta, shape);
  }
  dgammaOut.set(dgamma);
  dbetaOut.set(dbeta);
  return [dxInfo, dgammaInfo, dbetaInfo];
}
