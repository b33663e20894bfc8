// What every fused kernel's native.cc (kernels/<kernel>/native.cc) shares: the TensorFlow and
// Eigen headers, the names they use, and the helpers more than one kernel needs. The kernels are
// compiled together into one library (scripts/setup-tensorflow.sh), whose Node addon entry is
// kernels/native-addon.cc.

#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/SpecialFunctions"

namespace tessera {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int64_t kLanes = Eigen::internal::unpacket_traits<Packet>::size;
using RowArray = Eigen::Map<const Eigen::ArrayXf>;
using MutableRowArray = Eigen::Map<Eigen::ArrayXf>;

// Splits [0, total) units across the op's intra-op pool; `cycles_per_unit` lets TF keep small
// tensors on the calling thread, where waking workers would cost more than the work.
template <typename Fn>
inline void ParallelFor(OpKernelContext* ctx, int64_t total, int64_t cycles_per_unit, Fn&& fn) {
  ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(total, cycles_per_unit, fn);
}

// The shape function of ops whose every output has its input's shape.
inline tensorflow::Status SameAsInput(InferenceContext* c) {
  for (int i = 0; i < c->num_outputs(); i++) c->set_output(i, c->input(0));
  return absl::OkStatus();
}

}  // namespace tessera
