// The TesseraLayerNorm and TesseraLayerNormGrad ops: the native backend's fused kernels of
// layer_norm's contract (../contract.ts).

#include "../native-ops.h"

namespace tessera {
namespace {

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

// [rows..., C] -> [rows...] (the per-row statistics).
tensorflow::Status RowsOf(InferenceContext* c, ShapeHandle x, ShapeHandle* rows) {
  ShapeHandle at_least_vector;
  TF_RETURN_IF_ERROR(c->WithRankAtLeast(x, 1, &at_least_vector));
  return c->Subshape(at_least_vector, 0, -1, rows);
}

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

REGISTER_KERNEL_BUILDER(Name("TesseraLayerNorm").Device(tensorflow::DEVICE_CPU), LayerNormOp);
REGISTER_KERNEL_BUILDER(Name("TesseraLayerNormGrad").Device(tensorflow::DEVICE_CPU), LayerNormGradOp);

}  // namespace
}  // namespace tessera
