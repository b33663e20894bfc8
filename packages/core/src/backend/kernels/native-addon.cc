// Tessera's fused kernels as TensorFlow custom ops, for the native backend (tfjs-node).
//
// Each kernel's ops live in its own folder (kernels/gelu/native.cc, kernels/layer_norm/native.cc,
// kernels/dropout/native.cc), beside its contract (kernels/contract.ts) and its plain-JS reference,
// which is what the ops are tested against (kernels/native.native.test.ts). Each op replaces a
// chain of small element-wise TF kernels with one pass over memory, split across the op's CPU
// thread pool and vectorised with Eigen's packet math (the same erf/exp TF's own Erf/Exp kernels use).
//
// This file makes the library they are compiled into (by scripts/setup-tensorflow.sh) a Node
// addon: `require()`-ing it dlopens it into the process whose libtensorflow_framework.so.2
// tfjs-node already loaded, and the kernels' static initialisers (REGISTER_OP,
// REGISTER_KERNEL_BUILDER) register the ops there, so tfjs-node's executeSingleOutput /
// executeMultipleOutputs can run them by name.

#include <node_api.h>

// Loading the library is what registers the ops; the addon itself exports nothing.
NAPI_MODULE_INIT() { return exports; }
