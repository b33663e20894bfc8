import * as tf from '@tensorflow/tfjs';
// The cpu backend these kernels are registered for, without its tfjs-node banner.
import '../quiet-cpu.ts';
import { FUSED_KERNELS } from './contract.ts';
import { referenceBatchNorm, referenceBatchNormGrad } from './batch_norm/reference.ts';
import { referenceBiasAdd, referenceBiasAddGrad } from './bias_add/reference.ts';
import { referenceDropout } from './dropout/reference.ts';
import { referenceGeluExact } from './gelu/reference.ts';
import { referenceLayerNorm, referenceLayerNormGrad } from './layer_norm/reference.ts';

/* ----------------------------- the cpu backend's kernels --------------------------------- */

/** The part of the cpu backend the kernels use. */
interface CpuBackend {
  data: { get(dataId: object): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

function values(backend: CpuBackend, info: tf.TensorInfo): Float32Array {
  return backend.data.get(info.dataId).values as Float32Array;
}

/**
 * Registers the reference implementations as the `cpu` backend's fused kernels (registering for
 * a backend that is not initialised yet is allowed). Called by registerFusedKernels('cpu').
 */
export function registerCpuFusedKernels(): void {
  const register = (kernelName: string, kernelFunc: (inputs: tf.NamedTensorInfoMap, backend: CpuBackend, attrs: tf.NamedAttrMap) => tf.TensorInfo | tf.TensorInfo[]) =>
    tf.getKernel(kernelName, 'cpu') ??
    tf.registerKernel({
      kernelName,
      backendName: 'cpu',
      kernelFunc: ({ inputs, backend, attrs }) => kernelFunc(inputs, backend as CpuBackend, attrs as tf.NamedAttrMap),
    });
  register(FUSED_KERNELS.geluExact, (inputs, backend) => {
    const x = inputs.x as tf.TensorInfo;
    const { y, dydx } = referenceGeluExact(values(backend, x));
    return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo(x.shape, 'float32', dydx)];
  });
  register(FUSED_KERNELS.layerNorm, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    const { y, mean, rstd } = referenceLayerNorm(
      values(backend, x),
      values(backend, inputs.gamma as tf.TensorInfo),
      values(backend, inputs.beta as tf.TensorInfo),
      attrs.epsilon as number,
    );
    const rows = [x.shape[0]!];
    return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo(rows, 'float32', mean), backend.makeTensorInfo(rows, 'float32', rstd)];
  });
  register(FUSED_KERNELS.layerNormGrad, (inputs, backend) => {
    const x = inputs.x as tf.TensorInfo;
    const gamma = inputs.gamma as tf.TensorInfo;
    const { dx, dgamma, dbeta } = referenceLayerNormGrad(
      values(backend, inputs.dy as tf.TensorInfo),
      values(backend, x),
      values(backend, inputs.mean as tf.TensorInfo),
      values(backend, inputs.rstd as tf.TensorInfo),
      values(backend, gamma),
    );
    return [backend.makeTensorInfo(x.shape, 'float32', dx), backend.makeTensorInfo(gamma.shape, 'float32', dgamma), backend.makeTensorInfo(gamma.shape, 'float32', dbeta)];
  });
  register(FUSED_KERNELS.dropout, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    return backend.makeTensorInfo(x.shape, 'float32', referenceDropout(values(backend, x), attrs.rate as number, attrs.seed as number));
  });
  register(FUSED_KERNELS.batchNorm, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    const gamma = inputs.gamma as tf.TensorInfo;
    const { y, mean, variance } = referenceBatchNorm(values(backend, x), values(backend, gamma), values(backend, inputs.beta as tf.TensorInfo), attrs.epsilon as number);
    return [backend.makeTensorInfo(x.shape, 'float32', y), backend.makeTensorInfo(gamma.shape, 'float32', mean), backend.makeTensorInfo(gamma.shape, 'float32', variance)];
  });
  register(FUSED_KERNELS.batchNormGrad, (inputs, backend, attrs) => {
    const x = inputs.x as tf.TensorInfo;
    const gamma = inputs.gamma as tf.TensorInfo;
    const { dx, dgamma, dbeta } = referenceBatchNormGrad(
      values(backend, inputs.dy as tf.TensorInfo),
      values(backend, x),
      values(backend, inputs.mean as tf.TensorInfo),
      values(backend, inputs.variance as tf.TensorInfo),
      values(backend, gamma),
      attrs.epsilon as number,
    );
    return [backend.makeTensorInfo(x.shape, 'float32', dx), backend.makeTensorInfo(gamma.shape, 'float32', dgamma), backend.makeTensorInfo(gamma.shape, 'float32', dbeta)];
  });
  register(FUSED_KERNELS.biasAdd, (inputs, backend) => {
    const x = inputs.x as tf.TensorInfo;
    return backend.makeTensorInfo(x.shape, 'float32', referenceBiasAdd(values(backend, x), values(backend, inputs.bias as tf.TensorInfo)));
  });
  register(FUSED_KERNELS.biasAddGrad, (inputs, backend) => {
    const dy = inputs.dy as tf.TensorInfo;
    const columns = dy.shape[dy.shape.length - 1]!;
    return backend.makeTensorInfo([columns], 'float32', referenceBiasAddGrad(values(backend, dy), columns));
  });
}
