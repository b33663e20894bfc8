// The TesseraDropout op: the native backend's fused kernel of dropout's contract (../contract.ts).

#include "../native-ops.h"

namespace tessera {
namespace {

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

REGISTER_KERNEL_BUILDER(Name("TesseraDropout").Device(tensorflow::DEVICE_CPU), DropoutOp);

}  // namespace
}  // namespace tessera
