// The "blas" MatMul's implicit-GEMM convolution (ImplicitConv in matmul.h): one single-threaded
// OpenBLAS GEMM per image on the column matrix of that image alone, images spread over an OpenMP team.
//
// Why this shape (docs/benchmarks/cnn.md, "Making the dense VGG step faster"): im2col of the whole
// batch and one GEMM threaded by OpenBLAS streams a column matrix of ~100 MB (VGG conv2) from memory
// and passes cache-resident data between the two cores many times, which on the 2-vCPU machine costs
// 2-3x in its steady state. Here each thread builds one image's column matrix of the kept maps
// (conv2: 576 x 784 floats, 1.8 MB) in its own workspace and runs a single-threaded GEMM on it while
// it is still in that core's cache (OpenBLAS's OpenMP build does not fork inside a parallel region),
// writing the image's NCHW block directly: no transpose, and the threads share nothing but the
// read-only W. Measured as a microbenchmark there: 2.0x from 1 to 2 threads, ~170 GFLOP/s on conv2.
//
// Per role, with W_kept = W (no selection) or W's kept columns gathered once before the team starts:
//   forward      y[n] = alpha W_kept col(x[n]) + beta y[n]
//   grad-weight  each thread sums dy[n] col(x[n])^T over its images into a private Cout x kept*kh*kw
//                block; after a barrier the threads add the blocks, in thread order, into dW's kept
//                columns (alpha, beta), each thread a share of the rows
//   grad-input   dcol = alpha W_kept^T dy[n] in the thread's workspace, then col2im of the kept maps
//                into dx[n] with beta
// A batch of one image, a single thread, or a call from inside a parallel region runs the images in
// order on the calling thread, with OpenBLAS's and im2col's own threading.
// Not here: validation (implicit_conv.cc) and the plain GEMM paths (matmul_cpu.cc).
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "ops/kernels/gather_scatter.h"
#include "ops/kernels/im2col.h"
#include "ops/matmul/implicit_conv.h"
#include "ops/matmul/matmul_cpu_workspace.h"

namespace sieve::ops::cpu {

namespace {

using Role = ImplicitConv::Role;

// One call as the per-thread loops see it.
struct ConvCall {
  const ImplicitConvPlan& plan;
  const MatMulArgs& args;
  const float* w = nullptr;  // W_kept: Cout x kept_rows, leading dimension ldw
  int64_t ldw = 0;
};

// Elements [begin, end) of `count` that part `part` of `parts` takes: contiguous, sizes within one.
std::pair<int64_t, int64_t> Share(int64_t count, int part, int parts) {
  return {count * part / parts, count * (part + 1) / parts};
}

void Gemm(CBLAS_TRANSPOSE trans_a, CBLAS_TRANSPOSE trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a, trans_b, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

void ForwardImages(const ConvCall& call, int64_t begin, int64_t end) {
  const ImplicitConvPlan& p = call.plan;
  const int64_t rows = p.kept_rows(), plane = p.out_plane;
  float* col = Workspace::ThisThread().Reserve(rows * plane);
  const float* x = call.args.b.data<float>();
  float* y = call.args.c.data<float>();
  for (int64_t n = begin; n < end; ++n) {
    Im2Col(x + n * p.in_image, 1, p.geometry, p.maps_or_null(), col, plane, 0);
    Gemm(CblasNoTrans, CblasNoTrans, p.out_channels, plane, rows, call.args.attr.alpha, call.w, call.ldw, col, plane,
         call.args.attr.beta, y + n * p.out_image, plane);
  }
}

// Sums dy[n] col(x[n])^T over images [begin, end) into a Cout x kept_rows block of this thread's
// workspace and returns it (null when the range is empty).
const float* GradWeightImages(const ConvCall& call, int64_t begin, int64_t end) {
  if (begin == end) return nullptr;
  const ImplicitConvPlan& p = call.plan;
  const int64_t rows = p.kept_rows(), plane = p.out_plane;
  const int64_t col_floats = Workspace::Aligned(rows * plane);
  float* const space = Workspace::ThisThread().Reserve(col_floats + p.out_channels * rows);
  float* const col = space;
  float* const partial = space + col_floats;
  const float* x = call.args.b.data<float>();
  const float* dy = call.args.a.data<float>();
  for (int64_t n = begin; n < end; ++n) {
    Im2Col(x + n * p.in_image, 1, p.geometry, p.maps_or_null(), col, plane, 0);
    Gemm(CblasNoTrans, CblasTrans, p.out_channels, rows, plane, 1.0f, dy + n * p.out_image, plane, col, plane,
         n == begin ? 0.0f : 1.0f, partial, rows);
  }
  return partial;
}

// dW[co, kept columns] = alpha * (sum of the non-null partial blocks) + beta * dW for rows
// [row_begin, row_end); beta == 0 overwrites, so NaN garbage does not survive.
void AddPartials(const ConvCall& call, const std::vector<const float*>& partials, int64_t row_begin, int64_t row_end) {
  const ImplicitConvPlan& p = call.plan;
  const MatMulAttr& attr = call.args.attr;
  const int64_t rows = p.kept_rows(), area = p.kernel_area, ld = call.args.c.stride(0);
  float* dw = call.args.c.data<float>();
  for (int64_t co = row_begin; co < row_end; ++co) {
    float* out_row = dw + co * ld;
    for (int64_t j = 0; j < p.kept_maps; ++j) {
      const int64_t src = co * rows + j * area;
      float* out = out_row + (p.maps ? p.maps->kept[static_cast<size_t>(j)] : j) * area;
      for (int64_t t = 0; t < area; ++t) {
        float sum = 0.0f;
        for (const float* partial : partials)
          if (partial != nullptr) sum += partial[src + t];
        out[t] = attr.alpha * sum + (attr.beta == 0.0f ? 0.0f : attr.beta * out[t]);
      }
    }
  }
}

void GradInputImages(const ConvCall& call, int64_t begin, int64_t end) {
  const ImplicitConvPlan& p = call.plan;
  const int64_t rows = p.kept_rows(), plane = p.out_plane;
  float* dcol = Workspace::ThisThread().Reserve(rows * plane);
  const float* dy = call.args.b.data<float>();
  float* dx = call.args.c.data<float>();
  for (int64_t n = begin; n < end; ++n) {
    Gemm(CblasTrans, CblasNoTrans, rows, plane, p.out_channels, call.args.attr.alpha, call.w, call.ldw,
         dy + n * p.out_image, plane, 0.0f, dcol, plane);
    Col2Im(dcol, plane, 0, 1, p.geometry, p.maps_or_null(), dx + n * p.in_image, call.args.attr.beta);
  }
}

// The calling thread's second workspace, for the gathered W: its Workspace::ThisThread() holds its own
// column matrix while the team runs.
Workspace& GatheredWeightWorkspace() {
  thread_local Workspace workspace;
  return workspace;
}

// With no kept map the forward's sums are empty (y = beta * y); the backward roles write nothing.
void RunNoKeptMap(const ImplicitConvPlan& p, const MatMulArgs& args) {
  if (p.role != Role::kForward) return;
  float* y = args.c.data<float>();
  const int64_t count = p.batch * p.out_image;
  if (args.attr.beta == 0.0f) {
    std::fill(y, y + count, 0.0f);
  } else {
    for (int64_t i = 0; i < count; ++i) y[i] *= args.attr.beta;
  }
}

}  // namespace

void RunImplicitConv(const MatMulArgs& args) {
  const ImplicitConvPlan plan = PlanImplicitConv(args);
  if (plan.kept_maps == 0) {
    RunNoKeptMap(plan, args);
    return;
  }
  ConvCall call{plan, args};
  if (plan.role != Role::kGradWeight) {
    call.w = args.a.data<float>();
    call.ldw = args.a.stride(0);
    if (plan.columns != nullptr) {
      float* gathered = GatheredWeightWorkspace().Reserve(plan.out_channels * plan.kept_rows());
      GatherSubmatrix(call.w, call.ldw, plan.out_channels, args.a.dim(1), nullptr, plan.columns, gathered,
                      plan.kept_rows());
      call.w = gathered;
      call.ldw = plan.kept_rows();
    }
  }

  const int team =
      plan.batch < 2 || omp_in_parallel() ? 1 : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), plan.batch));
  if (team == 1) {
    switch (plan.role) {
      case Role::kForward:
        ForwardImages(call, 0, plan.batch);
        break;
      case Role::kGradWeight:
        AddPartials(call, {GradWeightImages(call, 0, plan.batch)}, 0, plan.out_channels);
        break;
      case Role::kGradInput:
        GradInputImages(call, 0, plan.batch);
        break;
    }
    return;
  }

  std::vector<const float*> partials(static_cast<size_t>(team), nullptr);
#pragma omp parallel num_threads(team)
  {
    const int thread = omp_get_thread_num(), threads = omp_get_num_threads();
    const auto [begin, end] = Share(plan.batch, thread, threads);
    switch (plan.role) {
      case Role::kForward:
        ForwardImages(call, begin, end);
        break;
      case Role::kGradWeight: {
        partials[static_cast<size_t>(thread)] = GradWeightImages(call, begin, end);
#pragma omp barrier
        const auto [row_begin, row_end] = Share(plan.out_channels, thread, threads);
        AddPartials(call, partials, row_begin, row_end);
        break;
      }
      case Role::kGradInput:
        GradInputImages(call, begin, end);
        break;
    }
  }
}

}  // namespace sieve::ops::cpu
