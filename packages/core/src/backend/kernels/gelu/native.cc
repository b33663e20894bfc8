// The TesseraGeluExact op: the native backend's fused kernel of gelu's contract (../contract.ts).

#include "../native-ops.h"

namespace tessera {
namespace {

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

REGISTER_OP("TesseraGeluExact")
    .Input("x: float")
    .Output("y: float")
    .Output("dydx: float")
    .SetShapeFn(SameAsInput)
    .Doc("Exact (erf) GELU and its derivative: y = x Phi(x), dydx = Phi(x) + x phi(x).");

REGISTER_KERNEL_BUILDER(Name("TesseraGeluExact").Device(tensorflow::DEVICE_CPU), GeluExactOp);

}  // namespace
}  // namespace tessera
