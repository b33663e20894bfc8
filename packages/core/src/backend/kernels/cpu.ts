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

/** What a kernel body sees: its inputs' values and shapes by name, its attrs, and a float32 output maker. */
interface KernelIo {
  input(name: string): Float32Array;
  shape(name: string): number[];
  attr(name: string): number;
  output(shape: number[], values: Float32Array): tf.TensorInfo;
}

/**
 * Registers the reference implementations as the `cpu` backend's fused kernels (registering for
 * a backend that is not initialised yet is allowed). Called by registerFusedKernels('cpu').
 */
export function registerCpuFusedKernels(): void {
  const register = (kernelName: string, kernelFunc: (io: KernelIo) => tf.TensorInfo | tf.TensorInfo[]) =>
    tf.getKernel(kernelName, 'cpu') ??
    tf.registerKernel({
      kernelName,
      backendName: 'cpu',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const cpu = backend as unknown as CpuBackend;
        const info = (name: string) => inputs[name] as tf.TensorInfo;
        return kernelFunc({
          input: (name) => cpu.data.get(info(name).dataId).values as Float32Array,
          shape: (name) => info(name).shape,
          attr: (name) => (attrs as tf.NamedAttrMap)[name] as number,
          output: (shape, values) => cpu.makeTensorInfo(shape, 'float32', values),
        });
      },
    });
  register(FUSED_KERNELS.geluExact, ({ input, shape, output }) => {
    const { y, dydx } = referenceGeluExact(input('x'));
    return [output(shape('x'), y), output(shape('x'), dydx)];
  });
  register(FUSED_KERNELS.layerNorm, ({ input, shape, attr, output }) => {
    const { y, mean, rstd } = referenceLayerNorm(input('x'), input('gamma'), input('beta'), attr('epsilon'));
    const rows = [shape('x')[0]!];
    return [output(shape('x'), y), output(rows, mean), output(rows, rstd)];
  });
  register(FUSED_KERNELS.layerNormGrad, ({ input, shape, output }) => {
    const { dx, dgamma, dbeta } = referenceLayerNormGrad(input('dy'), input('x'), input('mean'), input('rstd'), input('gamma'));
    return [output(shape('x'), dx), output(shape('gamma'), dgamma), output(shape('gamma'), dbeta)];
  });
  register(FUSED_KERNELS.dropout, ({ input, shape, attr, output }) => output(shape('x'), referenceDropout(input('x'), attr('rate'), attr('seed'))));
  register(FUSED_KERNELS.batchNorm, ({ input, shape, attr, output }) => {
    const { y, mean, variance } = referenceBatchNorm(input('x'), input('gamma'), input('beta'), attr('epsilon'));
    return [output(shape('x'), y), output(shape('gamma'), mean), output(shape('gamma'), variance)];
  });
  register(FUSED_KERNELS.batchNormGrad, ({ input, shape, attr, output }) => {
    const { dx, dgamma, dbeta } = referenceBatchNormGrad(input('dy'), input('x'), input('mean'), input('variance'), input('gamma'), attr('epsilon'));
    return [output(shape('x'), dx), output(shape('gamma'), dgamma), output(shape('gamma'), dbeta)];
  });
  register(FUSED_KERNELS.biasAdd, ({ input, shape, output }) => output(shape('x'), referenceBiasAdd(input('x'), input('bias'))));
  register(FUSED_KERNELS.biasAddGrad, ({ input, shape, output }) => {
    const columns = shape('dy').at(-1)!;
    return output([columns], referenceBiasAddGrad(input('dy'), columns));
  });
}
