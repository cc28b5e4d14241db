// [cuda] tests of device memory: the caching allocator hands freed blocks out again and accounts
// for every byte, tensors round-trip between host and device, and the per-device scratch buffers
// and cuBLAS handle of framework/cuda_context.h are reused rather than recreated.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "framework/cuda_context.h"
#include "framework/memory.h"
#include "framework/tensor.h"

namespace sieve {
namespace {

Tensor Iota(Shape shape) {
  std::vector<float> v(static_cast<size_t>(ShapeNumel(shape)));
  std::iota(v.begin(), v.end(), 1.0f);
  return Tensor::FromVector(std::move(shape), v);
}

TEST_CASE("The CUDA allocator reuses a freed block and counts bytes in use", "[cuda][framework]") {
  Allocator* allocator = GetAllocator(Device::CUDA(0));
  CHECK(allocator->device() == Device::CUDA(0));
  // An odd size no other test allocates, so the cached block that comes back must be this one.
  constexpr size_t kBytes = 7'777'777;
  const size_t before = allocator->bytes_in_use();
  void* first = allocator->Allocate(kBytes);
  REQUIRE(first != nullptr);
  CHECK(allocator->bytes_in_use() == before + kBytes);
  allocator->Deallocate(first, kBytes);
  CHECK(allocator->bytes_in_use() == before);
  void* second = allocator->Allocate(kBytes);
  CHECK(second == first);
  allocator->Deallocate(second, kBytes);
  // A cached block is not handed out for a request of less than half its size.
  void* small = allocator->Allocate(kBytes / 4);
  CHECK(small != first);
  allocator->Deallocate(small, kBytes / 4);
  CHECK(allocator->bytes_in_use() == before);
}

TEST_CASE("Device tensors give their bytes back when the last handle goes", "[cuda][framework]") {
  Allocator* allocator = GetAllocator(Device::CUDA(0));
  const size_t before = allocator->bytes_in_use();
  {
    Tensor t = Tensor::Zeros({300, 7}, DType::kFloat32, Device::CUDA(0));
    CHECK(t.device() == Device::CUDA(0));
    CHECK(allocator->bytes_in_use() == before + 300 * 7 * sizeof(float));
    Tensor view = t.Slice(0, 1, 300, 3);
    t = Tensor();
    CHECK(allocator->bytes_in_use() == before + 300 * 7 * sizeof(float));  // the view keeps the storage
  }
  CHECK(allocator->bytes_in_use() == before);
}

TEST_CASE("Tensor::Clone and CopyFrom round-trip between host and device", "[cuda][framework]") {
  const Tensor host = Iota({5, 9});
  const Tensor device = host.Clone(Device::CUDA(0));
  CHECK(device.device() == Device::CUDA(0));
  CHECK(device.ToString() == "float32[5, 9] on cuda:0");
  CHECK(device.ToVector() == host.ToVector());
  CHECK(device.Clone().device() == Device::CUDA(0));
  CHECK(device.Clone().ToVector() == host.ToVector());
  CHECK(device.Clone(Device::CPU()).ToVector() == host.ToVector());

  // A strided host view lands on the device contiguous, and a strided device view reads back.
  const Tensor every_other_row = host.Slice(0, 0, 5, 2);
  const Tensor packed = every_other_row.Clone(Device::CUDA(0));
  CHECK(packed.is_contiguous());
  CHECK(packed.ToVector() == every_other_row.ToVector());
  CHECK(device.MatrixView(2, 3, 4, 18).ToVector() == host.MatrixView(2, 3, 4, 18).ToVector());

  Tensor target = Tensor::Zeros({5, 9}, DType::kFloat32, Device::CUDA(0));
  for (float x : target.ToVector()) CHECK(x == 0.0f);
  REQUIRE(target.CopyFrom(host).ok());
  CHECK(target.ToVector() == host.ToVector());
  Tensor back = Tensor::Zeros({5, 9});
  REQUIRE(back.CopyFrom(target).ok());
  CHECK(back.ToVector() == host.ToVector());
}

TEST_CASE("Scratch buffers only grow and the cuBLAS handle is created once", "[cuda][framework]") {
  Allocator* allocator = GetAllocator(Device::CUDA(0));
  void* first = CudaScratchBuffer(0, CudaScratch::kMatMulC, 1000);
  CHECK(CudaScratchBuffer(0, CudaScratch::kMatMulC, 10) == first);
  CHECK(CudaScratchBuffer(0, CudaScratch::kMatMulC, 1000) == first);
  CHECK(CudaScratchBuffer(0, CudaScratch::kIndices, 1000) != first);  // slots are independent

  // 64 MiB + 1 grows the buffer to 128 MiB and gives the old block (at least 4 KiB, at most
  // 64 MiB: no test keeps a larger MatMul output block) back, so bytes in use rise by the difference.
  const size_t before = allocator->bytes_in_use();
  constexpr size_t kLarge = (size_t{64} << 20) + 1;
  void* grown = CudaScratchBuffer(0, CudaScratch::kMatMulC, kLarge);
  CHECK(allocator->bytes_in_use() >= before + (size_t{64} << 20));
  CHECK(allocator->bytes_in_use() <= before + (size_t{128} << 20) - 4096);
  CHECK(CudaScratchBuffer(0, CudaScratch::kMatMulC, 1000) == grown);
  CHECK(CudaScratchBuffer(0, CudaScratch::kMatMulC, kLarge) == grown);

  CHECK(CublasHandle(0) != nullptr);
  CHECK(CublasHandle(0) == CublasHandle(0));
}

}  // namespace
}  // namespace sieve
