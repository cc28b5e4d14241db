// [cuda] tests of the cuBLAS implicit-GEMM convolution (ImplicitConv in ops/matmul/matmul.h): every
// role against the CPU reference over kernels 1/3/5, strides 1/2, padding 0/1, batch 1 and 5, with
// and without a kept-map selection, beta 0 over NaN and beta != 0; and VGG's conv2 at batch 64, whose
// column matrix spans several chunks of the scratch budget, against the blas implementation. W's
// dropped columns hold NaN (reading them would show); every element of C's storage must match the
// reference within FP32 rounding, or keep its bits where the reference does not write.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>
#include <vector>

#include "ops/kernels/im2col.h"
#include "ops/matmul/matmul.h"
#include "tests/testing/random_tensors.h"

namespace sieve::ops {
namespace {

using Role = ImplicitConv::Role;

struct GpuCase {
  Role role = Role::kForward;
  ConvGeometry g;
  int64_t batch = 1, cout = 1;
  std::optional<ChannelSet> maps;
  float alpha = 1.0f, beta = 0.0f;
};

MatMulAttr AttrOf(const GpuCase& c) {
  MatMulAttr attr;
  attr.alpha = c.alpha;
  attr.beta = c.beta;
  attr.conv = ImplicitConv{c.role, c.g};
  if (c.maps) {
    ChannelSet columns;
    for (int64_t m : c.maps->kept)
      for (int64_t t = 0; t < c.g.kernel_area(); ++t) columns.kept.push_back(m * c.g.kernel_area() + t);
    const DimSelection sel{columns, c.g.channels * c.g.kernel_area()};
    (c.role == Role::kForward ? attr.k : c.role == Role::kGradWeight ? attr.n : attr.m) = sel;
  }
  return attr;
}

// (A, B, C) of the role on the CPU: W with NaN in its dropped columns, random images, C NaN when
// beta == 0.
struct CpuOperands {
  Tensor a, b, c;
};

CpuOperands MakeCpuOperands(const GpuCase& c, std::mt19937& rng) {
  const ConvGeometry& g = c.g;
  const int64_t columns = g.channels * g.kernel_area();
  Tensor w = testing::RandomTensor({c.cout, columns}, rng);
  if (c.maps && c.role != Role::kGradWeight) {
    float* p = w.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i)
      if (!c.maps->Kept((i % columns) / g.kernel_area())) p[i] = std::nanf("");
  }
  const Tensor x = testing::RandomTensor({c.batch, g.channels, g.height, g.width}, rng);
  const Tensor y = testing::RandomTensor({c.batch, c.cout, g.out_h(), g.out_w()}, rng);
  CpuOperands o;
  switch (c.role) {
    case Role::kForward:
      o = {w, x, y};
      break;
    case Role::kGradWeight:
      o = {y, x, w};
      break;
    case Role::kGradInput:
      o = {w, y, x};
      break;
  }
  if (c.beta == 0.0f) o.c.Fill(std::nanf(""));
  return o;
}

// Each element: the same bits (untouched by both), or both finite and within rounding.
void CheckSame(const std::vector<float>& got, const std::vector<float>& want, double atol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) == 0) continue;
    const double tol = atol + 1e-4 * std::fabs(static_cast<double>(want[i]));
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol)) {
      FAIL_CHECK("element " << i << " of " << got.size() << ": got " << got[i] << ", want " << want[i]);
      return;
    }
  }
}

// Runs the case on the GPU and with `cpu_impl` on the CPU, and compares C.
void CheckOnGpu(const GpuCase& c, const MatMulImpl* cpu_impl, std::mt19937& rng) {
  std::ostringstream what;
  what << "role " << static_cast<int>(c.role) << " batch " << c.batch << " Cout " << c.cout << " " << c.g.ToString()
       << " beta " << c.beta << (c.maps ? " selected" : "");
  INFO(what.str());
  const CpuOperands cpu = MakeCpuOperands(c, rng);
  const Tensor a = cpu.a.Clone(Device::CUDA(0)), b = cpu.b.Clone(Device::CUDA(0)), gpu_c = cpu.c.Clone(Device::CUDA(0));
  const MatMulAttr attr = AttrOf(c);
  REQUIRE(MatMul(a, b, gpu_c, attr).ok());
  auto args = MakeMatMulArgs(cpu.a, cpu.b, cpu.c, attr);
  REQUIRE(args.ok());
  REQUIRE(cpu_impl->Supports(*args).ok());
  cpu_impl->Run(*args);
  const int64_t terms = c.role == Role::kForward      ? c.g.channels * c.g.kernel_area()
                        : c.role == Role::kGradWeight ? c.batch * c.g.out_plane()
                                                      : c.cout * c.g.kernel_area();
  CheckSame(gpu_c.ToVector(), cpu.c.ToVector(), 2e-6 * static_cast<double>(terms));
}

TEST_CASE("cuBLAS implicit conv: every role matches the reference", "[cuda][ops][matmul][implicit_conv]") {
  std::mt19937 rng(5);
  struct Window {
    int64_t kernel, stride, pad;
  };
  for (Role role : {Role::kForward, Role::kGradWeight, Role::kGradInput}) {
    for (const Window w : {Window{1, 1, 0}, Window{3, 1, 1}, Window{5, 2, 1}, Window{3, 2, 0}}) {
      for (int64_t batch : {1, 5}) {
        for (bool select : {false, true}) {
          GpuCase c;
          c.role = role;
          c.g = ConvGeometry::Square(5, 9, 8, w.kernel, w.stride, w.pad);
          c.batch = batch;
          c.cout = 7;
          if (select) c.maps = ChannelSet{{0, 3, 4}};
          c.alpha = select ? 1.5f : 1.0f;
          c.beta = batch == 1 ? 0.0f : 0.5f;
          CheckOnGpu(c, ReferenceMatMulImpl(), rng);
        }
      }
    }
  }
}

TEST_CASE("cuBLAS implicit conv: VGG conv2 over several column chunks matches blas",
          "[cuda][ops][matmul][implicit_conv]") {
  std::mt19937 rng(6);
  for (Role role : {Role::kForward, Role::kGradWeight, Role::kGradInput}) {
    GpuCase c;
    c.role = role;
    c.g = ConvGeometry::Square(64, 28, 28, 3, 1, 1);  // 576 x 784 columns per image: 37 images per chunk
    c.batch = 64;
    c.cout = 64;
    CheckOnGpu(c, BlasMatMulImpl(), rng);
  }
}

}  // namespace
}  // namespace sieve::ops
