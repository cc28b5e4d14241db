// CUDA softmax + cross-entropy. A row is handled by one warp (up to kWarpRowClasses classes) or by
// one whole block (wider rows, e.g. a language model's vocabulary); the per-row losses and flags go
// to a workspace and one block reduces them in a fixed order, so the statistics are reproducible
// and nothing on the host waits. The backward counts the rows on the device and scales there.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "framework/cuda_check.h"
#include "framework/cuda_context.h"
#include "ops/kernels/softmax_xent.h"

namespace sieve::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int64_t kWarpRowClasses = 1024;
constexpr int64_t kMaxBlocks = int64_t{1} << 16;
constexpr int64_t kMaxGridY = 65535;
constexpr uint8_t kCountedBit = 1, kCorrectBit = 2;

// ignore_label as kernel arguments.
struct Ignore {
  bool set;
  int32_t label;
};

__device__ bool Counted(int32_t label, int64_t classes, Ignore ignore) {
  return label >= 0 && label < classes && !(ignore.set && label == ignore.label);
}

// Reductions over the kGroup threads that share a row (a warp, or the whole block). Every thread of
// the group gets the result; the order is fixed, and the group's earlier memory accesses are ordered
// before its later ones (the barrier that in-place rows rely on).
template <int kGroup, bool kMax>
__device__ float GroupReduce(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  if constexpr (kGroup == 32) {
    __syncwarp();
    return v;
  } else {
    if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
    __syncthreads();
    v = scratch[0];
    for (int w = 1; w < kWarps; ++w) v = kMax ? fmaxf(v, scratch[w]) : v + scratch[w];
    __syncthreads();  // scratch is reused by the next reduction
    return v;
  }
}

template <int kGroup>
__global__ void SoftmaxRowsKernel(const float* logits, int64_t ld_logits, const int32_t* __restrict__ labels,
                                  int64_t rows, int64_t classes, Ignore ignore, float* prob, int64_t ld_prob,
                                  double* __restrict__ row_loss, uint8_t* __restrict__ row_flags) {
  static_assert(kGroup == 32 || kGroup == kThreads);
  __shared__ float scratch[kWarps];
  const int lane = threadIdx.x % kGroup;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kThreads / kGroup) + threadIdx.x / kGroup;
  if (row >= rows) return;  // uniform over the group: a whole warp, or the whole block
  const float* x = logits + row * ld_logits;
  float* p = prob + row * ld_prob;  // may be x (in place)
  const int32_t label = labels[row];
  const bool counted = Counted(label, classes, ignore);
  const float target = counted && lane == 0 ? x[label] : 0.0f;

  float m = -INFINITY;
  for (int64_t c = lane; c < classes; c += kGroup) m = fmaxf(m, x[c]);
  m = GroupReduce<kGroup, true>(m, scratch);  // also orders the read of x[label] before any write to p
  float s = 0.0f;
  for (int64_t c = lane; c < classes; c += kGroup) {
    const float e = expf(x[c] - m);
    p[c] = e;
    s += e;
  }
  s = GroupReduce<kGroup, false>(s, scratch);
  const float inv = 1.0f / s;
  for (int64_t c = lane; c < classes; c += kGroup) p[c] *= inv;
  if (lane == 0) {
    row_loss[row] =
        counted ? log(static_cast<double>(s)) - (static_cast<double>(target) - static_cast<double>(m)) : 0.0;
    row_flags[row] = counted ? (kCountedBit | (target >= m ? kCorrectBit : 0)) : 0;
  }
}

// One block sums the per-row results in a fixed order.
__global__ void ReduceStatsKernel(const double* __restrict__ row_loss, const uint8_t* __restrict__ row_flags,
                                  int64_t rows, SoftmaxXentStats* stats) {
  __shared__ double loss_s[kThreads];
  __shared__ long long counted_s[kThreads], correct_s[kThreads];
  double loss = 0.0;
  long long counted = 0, correct = 0;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) {
    const uint8_t flags = row_flags[r];
    if ((flags & kCountedBit) == 0) continue;
    loss += row_loss[r];
    ++counted;
    correct += (flags & kCorrectBit) != 0 ? 1 : 0;
  }
  loss_s[threadIdx.x] = loss;
  counted_s[threadIdx.x] = counted;
  correct_s[threadIdx.x] = correct;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) {
      loss_s[threadIdx.x] += loss_s[threadIdx.x + half];
      counted_s[threadIdx.x] += counted_s[threadIdx.x + half];
      correct_s[threadIdx.x] += correct_s[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    stats->loss_sum = loss_s[0];
    stats->counted = counted_s[0];
    stats->correct = correct_s[0];
  }
}

__global__ void CountKernel(const int32_t* __restrict__ labels, int64_t rows, int64_t classes, Ignore ignore,
                            long long* counted) {
  __shared__ long long partial[kThreads];
  long long n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) n += Counted(labels[r], classes, ignore) ? 1 : 0;
  partial[threadIdx.x] = n;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half >>= 1) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *counted = partial[0];
}

// dlogits may be prob (in place): each element is read and written by the same thread.
__global__ void GradKernel(const float* prob, int64_t ld_prob, const int32_t* __restrict__ labels, int64_t rows,
                           int64_t classes, Ignore ignore, float loss_weight, const long long* __restrict__ counted,
                           float* dlogits, int64_t ld_dlogits) {
  const long long n = *counted;
  const float scale = n > 0 ? loss_weight / static_cast<float>(n) : 0.0f;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int32_t label = labels[r];
    const bool counted_row = Counted(label, classes, ignore);
    const float* p = prob + r * ld_prob;
    float* d = dlogits + r * ld_dlogits;
    for (int64_t c = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; c < classes;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x)
      d[c] = counted_row ? (p[c] - (c == label ? 1.0f : 0.0f)) * scale : 0.0f;
  }
}

Tensor Workspace(int64_t bytes) {
  const int device = CurrentCudaDevice();
  return Tensor::Empty({std::max<int64_t>((bytes + 3) / 4, 1)}, DType::kFloat32, Device::CUDA(device));
}

Ignore ToIgnore(const std::optional<int32_t>& ignore_label) {
  return {ignore_label.has_value(), ignore_label.value_or(0)};
}

}  // namespace

void SoftmaxXentForward(const float* logits, int64_t ld_logits, const int32_t* labels, int64_t rows, int64_t classes,
                        std::optional<int32_t> ignore_label, float* prob, int64_t ld_prob, SoftmaxXentStats* stats) {
  // Per-row losses (doubles) first, then the flags, in one workspace.
  Tensor workspace = Workspace(rows * static_cast<int64_t>(sizeof(double) + sizeof(uint8_t)));
  double* row_loss = static_cast<double*>(workspace.raw_data());
  uint8_t* row_flags = reinterpret_cast<uint8_t*>(row_loss + rows);
  if (rows > 0 && classes > 0) {
    const Ignore ignore = ToIgnore(ignore_label);
    if (classes <= kWarpRowClasses) {
      const unsigned blocks = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
      SoftmaxRowsKernel<32><<<blocks, kThreads, 0, CudaStream()>>>(logits, ld_logits, labels, rows, classes, ignore,
                                                                   prob, ld_prob, row_loss, row_flags);
    } else {
      SoftmaxRowsKernel<kThreads><<<static_cast<unsigned>(rows), kThreads, 0, CudaStream()>>>(
          logits, ld_logits, labels, rows, classes, ignore, prob, ld_prob, row_loss, row_flags);
    }
    SIEVE_CUDA_CHECK_LAUNCH();
  }
  // With no classes every row is left uncounted: rows = 0 makes the reduction write zeros.
  ReduceStatsKernel<<<1, kThreads, 0, CudaStream()>>>(row_loss, row_flags, classes > 0 ? rows : 0, stats);
  SIEVE_CUDA_CHECK_LAUNCH();
}

void SoftmaxXentBackward(const float* prob, int64_t ld_prob, const int32_t* labels, int64_t rows, int64_t classes,
                         std::optional<int32_t> ignore_label, float loss_weight, float* dlogits, int64_t ld_dlogits) {
  if (rows == 0 || classes == 0) return;
  const Ignore ignore = ToIgnore(ignore_label);
  Tensor counted = Workspace(sizeof(long long));
  long long* counted_ptr = static_cast<long long*>(counted.raw_data());
  CountKernel<<<1, kThreads, 0, CudaStream()>>>(labels, rows, classes, ignore, counted_ptr);
  SIEVE_CUDA_CHECK_LAUNCH();
  const int64_t gx = std::min<int64_t>((classes + kThreads - 1) / kThreads, kMaxBlocks);
  const int64_t gy = std::min<int64_t>({rows, kMaxGridY, std::max<int64_t>(1, kMaxBlocks / gx)});
  GradKernel<<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), kThreads, 0, CudaStream()>>>(
      prob, ld_prob, labels, rows, classes, ignore, loss_weight, counted_ptr, dlogits, ld_dlogits);
  SIEVE_CUDA_CHECK_LAUNCH();
}

}  // namespace sieve::ops::cuda
