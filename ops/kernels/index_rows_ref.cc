// The naive reference index-row kernels: the loops of index_rows.h, one element at a time, in
// position order. The test oracle.
#include "ops/kernels/index_rows.h"

namespace sieve::ops::ref {

void GatherRows(const Tensor& table, const Tensor& indices, const Tensor& out) {
  const int32_t* index = indices.data<int32_t>();
  for (int64_t i = 0; i < out.dim(0); ++i)
    for (int64_t c = 0; c < out.dim(1); ++c)
      out.data<float>()[i * out.stride(0) + c] = table.data<float>()[index[i] * table.stride(0) + c];
}

void ScatterAddRows(const Tensor& src, const Tensor& indices, const Tensor& dst) {
  const int32_t* index = indices.data<int32_t>();
  for (int64_t i = 0; i < src.dim(0); ++i)
    for (int64_t c = 0; c < src.dim(1); ++c)
      dst.data<float>()[index[i] * dst.stride(0) + c] += src.data<float>()[i * src.stride(0) + c];
}

}  // namespace sieve::ops::ref
