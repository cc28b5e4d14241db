// The naive reference bias kernels: the formulas of bias.h one element at a time, sums in double,
// the pattern's kept indices enumerated with KeptIndices. Slow on purpose; the test oracle.
#include <vector>

#include "ops/kernels/bias.h"

namespace sieve::ops::ref {

namespace {

// col(j) for every stored column j.
std::vector<int64_t> ColumnIndices(const std::optional<IndexPattern>& cols, int64_t extent) {
  if (cols) return KeptIndices(*cols, extent);
  std::vector<int64_t> all(static_cast<size_t>(extent));
  for (int64_t j = 0; j < extent; ++j) all[static_cast<size_t>(j)] = j;
  return all;
}

// (batch, channels, spatial, leading dimension) of a conv output, as in bias.cc.
struct ChannelView {
  int64_t batch, channels, spatial, ld;
};
ChannelView ViewOf(const Tensor& t) {
  if (t.rank() == 2) return {1, t.dim(0), t.dim(1), t.stride(0)};
  const int64_t spatial = t.rank() == 3 ? t.dim(2) : t.dim(2) * t.dim(3);
  return {t.dim(0), t.dim(1), spatial, spatial};
}

}  // namespace

void AddBias(const Tensor& y, const Tensor& bias, const std::optional<IndexPattern>& cols) {
  const std::vector<int64_t> col = ColumnIndices(cols, bias.numel());
  float* Y = y.data<float>();
  const float* b = bias.data<float>();
  for (int64_t i = 0; i < y.dim(0); ++i)
    for (int64_t j = 0; j < y.dim(1); ++j) {
      float& v = Y[i * y.stride(0) + j];
      v = static_cast<float>(static_cast<double>(v) + b[col[static_cast<size_t>(j)]]);
    }
}

void BiasBackward(const Tensor& dy, const Tensor& db, float beta, const std::optional<IndexPattern>& cols) {
  const std::vector<int64_t> col = ColumnIndices(cols, db.numel());
  const float* D = dy.data<float>();
  float* g = db.data<float>();
  for (int64_t j = 0; j < dy.dim(1); ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < dy.dim(0); ++i) sum += D[i * dy.stride(0) + j];
    float& out = g[col[static_cast<size_t>(j)]];
    out = static_cast<float>(sum + (beta == 0.0f ? 0.0 : static_cast<double>(beta) * out));
  }
}

void AddChannelBias(const Tensor& y, const Tensor& bias) {
  const ChannelView v = ViewOf(y);
  float* Y = y.data<float>();
  const float* b = bias.data<float>();
  for (int64_t n = 0; n < v.batch; ++n)
    for (int64_t c = 0; c < v.channels; ++c)
      for (int64_t s = 0; s < v.spatial; ++s) {
        float& x = Y[(n * v.channels + c) * v.ld + s];
        x = static_cast<float>(static_cast<double>(x) + b[c]);
      }
}

void ChannelBiasBackward(const Tensor& dy, const Tensor& db, float beta) {
  const ChannelView v = ViewOf(dy);
  const float* D = dy.data<float>();
  float* g = db.data<float>();
  for (int64_t c = 0; c < v.channels; ++c) {
    double sum = 0.0;
    for (int64_t n = 0; n < v.batch; ++n)
      for (int64_t s = 0; s < v.spatial; ++s) sum += D[(n * v.channels + c) * v.ld + s];
    g[c] = static_cast<float>(sum + (beta == 0.0f ? 0.0 : static_cast<double>(beta) * g[c]));
  }
}

}  // namespace sieve::ops::ref
