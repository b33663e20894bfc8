// Tessera's fused kernels as TensorFlow custom ops, for the native backend (tfjs-node).
//
// The contract (names, inputs, outputs, attrs, exact math, dropout's hash) is
// packages/core/src/backend/kernels/ (contract.ts); their plain-JS reference implementations are what these are
// tested against (kernels/native.native.test.ts). Each op replaces a chain of small element-wise
// TF kernels with one pass over memory, split across the op's CPU thread pool and vectorised with
// Eigen's packet math (the same erf/exp TF's own Erf/Exp kernels use).
//
// The file is also a Node addon: `require()`-ing the built library dlopens it into the process
// whose libtensorflow_framework.so.2 tfjs-node already loaded, and its static initialisers
// (REGISTER_OP, REGISTER_KERNEL_BUILDER) register the ops there, so tfjs-node's
// executeSingleOutput / executeMultipleOutputs can run them by name. Built by
// scripts/setup-tensorflow.sh.

#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "unsupported/Eigen/SpecialFunctions"

namespace tessera {
namespace {

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
void ParallelFor(OpKernelContext* ctx, int64_t total, int64_t cycles_per_unit, Fn&& fn) {
  ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(total, cycles_per_unit, fn);
}

/* ------------------------------------- TesseraGeluExact ------------------------------------ */

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// y = x Phi(x), dydx = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2: Keras' exact gelu
// and its derivative, erf and exp computed once per value for both outputs.
void GeluExactRange(const float* x, float* y, float* dydx, int64_t begin, int64_t end) {
  using namespace Eigen::internal;
  const Packet half = pset1<Packet>(0.5f), inv_sqrt2 = pset1<Packet>(kInvSqrt2),
               inv_sqrt2pi = pset1<Packet>(kInvSqrt2Pi), minus_half = pset1<Packet>(-0.5f);
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    const Packet v = ploadu<Packet>(x + i);
    const Packet cdf = pmadd(half, generic_fast_erf_float(pmul(v, inv_sqrt2)), half);
    const Packet pdf = pmul(inv_sqrt2pi, pexp(pmul(minus_half, pmul(v, v))));
    pstoreu(y + i, pmul(v, cdf));
    pstoreu(dydx + i, pmadd(v, pdf, cdf));
  }
  for (; i < end; i++) {
    const float v = x[i];
    const float cdf = 0.5f * generic_fast_erf_float(v * kInvSqrt2) + 0.5f;
    y[i] = v * cdf;
    dydx[i] = cdf + v * kInvSqrt2Pi * std::exp(-0.5f * v * v);
  }
}

class GeluExactOp : public OpKernel {
 public:
  explicit GeluExactOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    Tensor* y = nullptr;
    Tensor* dydx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, x.shape(), &dydx));
    const float* in = x.flat<float>().data();
    float* out = y->flat<float>().data();
    float* derivative = dydx->flat<float>().data();
    // Blocks of whole packets, so only the last block has a scalar tail.
    constexpr int64_t kBlock = 16 * kLanes;
    const int64_t size = x.NumElements();
    ParallelFor(ctx, (size + kBlock - 1) / kBlock, kBlock * 20, [&](int64_t first, int64_t last) {
      GeluExactRange(in, out, derivative, first * kBlock, std::min(size, last * kBlock));
    });
  }
};

/* ------------------------------ TesseraLayerNorm (and its grad) ---------------------------- */

// Rows are every axis but the last (the contract's x is [rows, C]; any rank >= 1 works the same).
int64_t Columns(const Tensor& x) { return x.dim_size(x.dims() - 1); }

TensorShape RowsShape(const Tensor& x) {
  TensorShape rows = x.shape();
  rows.RemoveLastDims(1);
  return rows;
}

// The check both layer-norm kernels share: x has a last axis, and `name` is a vector of its size.
tensorflow::Status CheckColumnsVector(const Tensor& x, const Tensor& vector, const char* name) {
  if (x.dims() < 1) return tensorflow::errors::InvalidArgument("x must have rank >= 1 (rows x columns), got a scalar");
  if (vector.dims() != 1 || vector.dim_size(0) != Columns(x)) {
    return tensorflow::errors::InvalidArgument(name, " must be [", Columns(x), "] (x's last axis), got ",
                                               vector.shape().DebugString());
  }
  return absl::OkStatus();
}

class LayerNormOp : public OpKernel {
 public:
  explicit LayerNormOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("epsilon", &epsilon_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& gamma = ctx->input(1);
    const Tensor& beta = ctx->input(2);
    OP_REQUIRES_OK(ctx, CheckColumnsVector(x, gamma, "gamma"));
    OP_REQUIRES_OK(ctx, CheckColumnsVector(x, beta, "beta"));
    Tensor *y = nullptr, *mean = nullptr, *rstd = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, RowsShape(x), &mean));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, RowsShape(x), &rstd));
    const int64_t columns = Columns(x);
    if (columns == 0) return;
    const float* in = x.flat<float>().data();
    float* out = y->flat<float>().data();
    float* means = mean->flat<float>().data();
    float* rstds = rstd->flat<float>().data();
    const RowArray g(gamma.flat<float>().data(), columns);
    const RowArray b(beta.flat<float>().data(), columns);
    const float epsilon = epsilon_;
    ParallelFor(ctx, mean->NumElements(), columns * 6, [&](int64_t first, int64_t last) {
      for (int64_t r = first; r < last; r++) {
        const RowArray row(in + r * columns, columns);
        // Two passes: E[x^2] - m^2 would cancel badly where |mean| >> std. The deviations' sum
        // corrects the first pass's rounding of the mean (the corrected two-pass algorithm).
        const float rough_mean = row.sum() / columns;
        const float deviations = (row - rough_mean).sum();
        const float squares = (row - rough_mean).square().sum();
        const float m = rough_mean + deviations / columns;
        const float variance = std::max(0.0f, (squares - deviations * deviations / columns) / columns);
        const float s = 1.0f / std::sqrt(variance + epsilon);
        MutableRowArray(out + r * columns, columns) = (row - m) * s * g + b;
        means[r] = m;
        rstds[r] = s;
      }
    });
  }

 private:
  float epsilon_;
};

class LayerNormGradOp : public OpKernel {
 public:
  explicit LayerNormGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    const Tensor& mean = ctx->input(2);
    const Tensor& rstd = ctx->input(3);
    const Tensor& gamma = ctx->input(4);
    OP_REQUIRES_OK(ctx, CheckColumnsVector(x, gamma, "gamma"));
    OP_REQUIRES(ctx, dy.shape() == x.shape(),
                tensorflow::errors::InvalidArgument("dy must have x's shape ", x.shape().DebugString(), ", got ",
                                                    dy.shape().DebugString()));
    OP_REQUIRES(ctx, mean.shape() == RowsShape(x) && rstd.shape() == RowsShape(x),
                tensorflow::errors::InvalidArgument("mean and rstd must be ", RowsShape(x).DebugString(),
                                                    " (x without its last axis), got ", mean.shape().DebugString(),
                                                    " and ", rstd.shape().DebugString()));
    Tensor *dx = nullptr, *dgamma = nullptr, *dbeta = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, gamma.shape(), &dgamma));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, gamma.shape(), &dbeta));
    const int64_t columns = Columns(x);
    const int64_t rows = mean.NumElements();
    if (columns == 0) return;
    if (rows == 0) {
      dgamma->flat<float>().setZero();
      dbeta->flat<float>().setZero();
      return;
    }
    const float* upstream = dy.flat<float>().data();
    const float* in = x.flat<float>().data();
    const float* means = mean.flat<float>().data();
    const float* rstds = rstd.flat<float>().data();
    float* out = dx->flat<float>().data();
    const RowArray g(gamma.flat<float>().data(), columns);

    // dgamma and dbeta sum over rows: each block of rows sums into its own partial, and the
    // partials are added in block order afterwards. A fixed block count (not one per thread)
    // keeps the result independent of the thread count and of scheduling.
    const int64_t blocks = std::min<int64_t>(rows, 64);
    const int64_t rows_per_block = (rows + blocks - 1) / blocks;
    std::vector<float> partial_dgamma(blocks * columns, 0.0f), partial_dbeta(blocks * columns, 0.0f);
    ParallelFor(ctx, blocks, rows_per_block * columns * 12, [&](int64_t first, int64_t last) {
      Eigen::ArrayXf xhat(columns), scaled(columns);
      for (int64_t block = first; block < last; block++) {
        MutableRowArray block_dgamma(partial_dgamma.data() + block * columns, columns);
        MutableRowArray block_dbeta(partial_dbeta.data() + block * columns, columns);
        for (int64_t r = block * rows_per_block; r < std::min(rows, (block + 1) * rows_per_block); r++) {
          const RowArray row_dy(upstream + r * columns, columns);
          xhat = (RowArray(in + r * columns, columns) - means[r]) * rstds[r];
          scaled = row_dy * g;
          const float mean_scaled = scaled.sum() / columns;
          const float mean_scaled_xhat = (scaled * xhat).sum() / columns;
          MutableRowArray(out + r * columns, columns) = rstds[r] * (scaled - mean_scaled - xhat * mean_scaled_xhat);
          block_dgamma += row_dy * xhat;
          block_dbeta += row_dy;
        }
      }
    });
    float* dgammas = dgamma->flat<float>().data();
    float* dbetas = dbeta->flat<float>().data();
    for (int64_t c = 0; c < columns; c++) {
      double sum_dgamma = 0, sum_dbeta = 0;
      for (int64_t block = 0; block < blocks; block++) {
        sum_dgamma += partial_dgamma[block * columns + c];
        sum_dbeta += partial_dbeta[block * columns + c];
      }
      dgammas[c] = static_cast<float>(sum_dgamma);
      dbetas[c] = static_cast<float>(sum_dbeta);
    }
  }
};

/* -------------------------------------- TesseraDropout ------------------------------------- */

// kernels/dropout/reference.ts's fmix32, dropoutKey and dropoutPairBits in uint32 arithmetic: bit-identical masks.
inline uint32_t Fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// Unit i takes half of pair i/2's 32 bits. Hashing per unit (each pair twice) keeps loads and
// stores contiguous, so the loop vectorises; hashing is cheaper than the shuffles a per-pair loop
// would need. Dropped units are x * 0, not 0 (the contract: -0 for a negative x, NaN stays NaN,
// as in the composite x * mask).
void DropoutRange(const float* __restrict in, float* __restrict out, int64_t begin, int64_t end, uint32_t key,
                  uint32_t threshold, float scale) {
  for (int64_t i = begin; i < end; i++) {
    const uint32_t unit = static_cast<uint32_t>(i);
    const uint32_t bits = Fmix32(key + (unit >> 1) * 0x9e3779b1u);
    const uint32_t unit_bits = (bits >> ((unit & 1u) << 4)) & 0xffffu;
    out[i] = in[i] * (unit_bits >= threshold ? scale : 0.0f);
  }
}

class DropoutOp : public OpKernel {
 public:
  explicit DropoutOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    float rate, scale;
    int64_t threshold;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("rate", &rate));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("threshold", &threshold));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("scale", &scale));
    OP_REQUIRES(ctx, rate >= 0.0f && rate < 1.0f,
                tensorflow::errors::InvalidArgument("rate must be in [0, 1), got ", rate));
    // dropoutThreshold and the scale, from the float32 rate unless the caller passed the values it
    // computed from its float64 rate (as kernels/native.ts does): float32(0.9) is 0.89999998, whose
    // 1 / (1 - rate) rounds two ulps away from float32(1 / (1 - 0.9)).
    threshold_ = threshold >= 0 ? static_cast<uint32_t>(threshold)
                                : static_cast<uint32_t>(std::ceil(static_cast<double>(rate) * 65536.0));
    scale_ = scale > 0.0f ? scale : static_cast<float>(1.0 / (1.0 - static_cast<double>(rate)));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& seed = ctx->input(1);
    OP_REQUIRES(ctx, seed.NumElements() == 1,
                tensorflow::errors::InvalidArgument("seed must be one int32, got ", seed.shape().DebugString()));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    const int64_t size = x.NumElements();
    const float* in = x.flat<float>().data();
    float* out = y->flat<float>().data();
    // dropoutKey: seed >>> 0 is the seed modulo 2^32, as is this conversion.
    const uint32_t key = Fmix32(static_cast<uint32_t>(seed.flat<int32_t>()(0)));
    const uint32_t threshold = threshold_;
    const float scale = scale_;
    ParallelFor(ctx, size, 4, [&](int64_t first, int64_t last) { DropoutRange(in, out, first, last, key, threshold, scale); });
  }

 private:
  uint32_t threshold_;
  float scale_;
};

/* --------------------------------------- registration -------------------------------------- */

tensorflow::Status SameAsInput(InferenceContext* c) {
  for (int i = 0; i < c->num_outputs(); i++) c->set_output(i, c->input(0));
  return absl::OkStatus();
}

// [rows..., C] -> [rows...] (the per-row statistics).
tensorflow::Status RowsOf(InferenceContext* c, ShapeHandle x, ShapeHandle* rows) {
  ShapeHandle at_least_vector;
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(x, 1, &at_least_vector));
  return c->Subshape(at_least_vector, 0, -1, rows);
}

REGISTER_OP("TesseraGeluExact")
    .Input("x: float")
    .Output("y: float")
    .Output("dydx: float")
    .SetShapeFn(SameAsInput)
    .Doc("Exact (erf) GELU and its derivative: y = x Phi(x), dydx = Phi(x) + x phi(x).");

REGISTER_OP("TesseraLayerNorm")
    .Input("x: float")
    .Input("gamma: float")
    .Input("beta: float")
    .Output("y: float")
    .Output("mean: float")
    .Output("rstd: float")
    .Attr("epsilon: float")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle rows;
      TF_RETURN_IF_ERROR(RowsOf(c, c->input(0), &rows));
      c->set_output(0, c->input(0));
      c->set_output(1, rows);
      c->set_output(2, rows);
      return absl::OkStatus();
    })
    .Doc("Layer normalisation over the last axis, with the per-row mean and 1/sqrt(var + epsilon).");

REGISTER_OP("TesseraLayerNormGrad")
    .Input("dy: float")
    .Input("x: float")
    .Input("mean: float")
    .Input("rstd: float")
    .Input("gamma: float")
    .Output("dx: float")
    .Output("dgamma: float")
    .Output("dbeta: float")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(4));
      c->set_output(2, c->input(4));
      return absl::OkStatus();
    })
    .Doc("The gradients of TesseraLayerNorm with respect to x, gamma and beta.");

// The seed is an input, not an attr as in the TF.js kernel: eager TensorFlow caches one kernel
// instance per distinct attr set, forever, and training draws a new seed every step (measured:
// ~2 KB of RSS and +8 us per call for each new seed).
REGISTER_OP("TesseraDropout")
    .Input("x: float")
    .Input("seed: int32")
    .Output("y: float")
    .Attr("rate: float")
    .Attr("threshold: int = -1")
    .Attr("scale: float = -1")
    .SetShapeFn(SameAsInput)
    .Doc("Dropout with a counter-based mask (Tessera's dropoutKeeps), scaled by 1 / (1 - rate). "
         "threshold (ceil(rate * 65536)) and scale, where given (>= 0 and > 0), override the values "
         "derived from the float32 rate.");

REGISTER_KERNEL_BUILDER(Name("TesseraGeluExact").Device(tensorflow::DEVICE_CPU), GeluExactOp);
REGISTER_KERNEL_BUILDER(Name("TesseraLayerNorm").Device(tensorflow::DEVICE_CPU), LayerNormOp);
REGISTER_KERNEL_BUILDER(Name("TesseraLayerNormGrad").Device(tensorflow::DEVICE_CPU), LayerNormGradOp);
REGISTER_KERNEL_BUILDER(Name("TesseraDropout").Device(tensorflow::DEVICE_CPU), DropoutOp);

}  // namespace
}  // namespace tessera

// Loading the library is what registers the ops; the addon itself exports nothing.
NAPI_MODULE_INIT() { return exports; }
