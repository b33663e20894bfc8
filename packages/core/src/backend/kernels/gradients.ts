import * as tf from '@tensorflow/tfjs';
import { FUSED_KERNELS } from './contract.ts';

/* The gradients of the fused kernels that autodiff reaches through tf.engine().runKernel (the  *
 * others are wrapped in tf.customGrad by their primitives). Gradients belong to no backend:    *
 * registered once, by registerFusedKernels, whichever backend it is called for.                */

/**
 * TesseraBatchNorm's gradient, for every backend that has the kernel pair: one
 * TesseraBatchNormGrad call serves x, gamma and beta. A registered gradient rather than a
 * tf.customGrad, so the kernel's mean and variance outputs reach the caller (for the moving
 * statistics) while autodiff still wires y back to the inputs.
 */
function registerBatchNormGradient(): void {
  if (tf.getGradient(FUSED_KERNELS.batchNorm) !== undefined) return;
  tf.registerGradient({
    kernelName: FUSED_KERNELS.batchNorm,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma, mean, variance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const upstream = Array.isArray(dy) ? dy[0]! : dy;
      // Computed here, not in the thunks: the engine runs each thunk in its own tidy, which
      // would dispose the other two outputs of a call made in the first.
      const [dx, dgamma, dbeta] = tf.engine().runKernel(FUSED_KERNELS.batchNormGrad, { dy: upstream, x, mean, variance, gamma }, { epsilon: attrs.epsilon as number }) as tf.Tensor[];
      return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta! };
    },
  });
}

/** TesseraBiasAdd's gradient: dy itself for x, one TesseraBiasAddGrad for the bias. */
function registerBiasAddGradient(): void {
  if (tf.getGradient(FUSED_KERNELS.biasAdd) !== undefined) return;
  tf.registerGradient({
    kernelName: FUSED_KERNELS.biasAdd,
    gradFunc: (dy) => {
      const upstream = Array.isArray(dy) ? dy[0]! : dy;
      return { x: () => upstream, bias: () => tf.engine().runKernel(FUSED_KERNELS.biasAddGrad, { dy: upstream }) as tf.Tensor };
    },
  });
}

/** Registers the fused kernels' gradients (once; later calls do nothing). */
export function registerFusedGradients(): void {
  registerBatchNormGradient();
  registerBiasAddGradient();
}
