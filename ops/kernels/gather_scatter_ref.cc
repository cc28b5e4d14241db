// Naive reference gather/scatter (the ref:: half of gather_scatter.h): enumerate the kept indices
// and copy one element at a time through the tensors' strides. Slow on purpose; it is the oracle
// the CPU and CUDA fast paths are tested against, and it does not validate its arguments.
#include <vector>

#include "ops/kernels/gather_scatter.h"

namespace sieve::ops::ref {

namespace {
std::vector<int64_t> Indices(const std::optional<IndexPattern>& pattern, int64_t extent) {
  if (pattern) return KeptIndices(*pattern, extent);
  std::vector<int64_t> all(static_cast<size_t>(extent));
  for (int64_t i = 0; i < extent; ++i) all[i] = i;
  return all;
}
}  // namespace

void GatherSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                     const std::optional<IndexPattern>& cols, const Tensor& dst) {
  const std::vector<int64_t> r = Indices(rows, src.dim(0)), c = Indices(cols, src.dim(1));
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (size_t i = 0; i < r.size(); ++i)
    for (size_t j = 0; j < c.size(); ++j)
      d[static_cast<int64_t>(i) * dst.stride(0) + static_cast<int64_t>(j) * dst.stride(1)] =
          s[r[i] * src.stride(0) + c[j] * src.stride(1)];
}

void ScatterSubmatrix(const Tensor& src, const std::optional<IndexPattern>& rows,
                      const std::optional<IndexPattern>& cols, const Tensor& dst, float beta) {
  const std::vector<int64_t> r = Indices(rows, dst.dim(0)), c = Indices(cols, dst.dim(1));
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  for (size_t i = 0; i < r.size(); ++i) {
    for (size_t j = 0; j < c.size(); ++j) {
      float& out = d[r[i] * dst.stride(0) + c[j] * dst.stride(1)];
      const float in = s[static_cast<int64_t>(i) * src.stride(0) + static_cast<int64_t>(j) * src.stride(1)];
      out = beta == 0.0f ? in : in + beta * out;
    }
  }
}

}  // namespace sieve::ops::ref
