// Device and dtype names and sizes; CUDA presence is asked of the runtime only in CUDA builds.
#include "framework/device.h"

#include <iterator>

#ifdef SIEVE_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace sieve {

namespace {
constexpr const char* kDeviceTypeNames[] = {"cpu", "cuda"};
static_assert(std::size(kDeviceTypeNames) == static_cast<size_t>(DeviceType::kCount));

struct DTypeInfo {
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypeInfo[] = {{"float32", 4}, {"float16", 2}, {"bfloat16", 2}, {"int32", 4}};
static_assert(std::size(kDTypeInfo) == static_cast<size_t>(DType::kCount));
}  // namespace

const char* DeviceTypeName(DeviceType type) { return kDeviceTypeNames[static_cast<int>(type)]; }

std::string Device::ToString() const {
  std::string s = DeviceTypeName(type);
  if (type == DeviceType::kCUDA) s += ":" + std::to_string(index);
  return s;
}

const char* DTypeName(DType dtype) { return kDTypeInfo[static_cast<int>(dtype)].name; }
size_t DTypeSize(DType dtype) { return kDTypeInfo[static_cast<int>(dtype)].size; }

bool CudaAvailable() {
#ifdef SIEVE_WITH_CUDA
  static const bool available = [] {
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  }();
  return available;
#else
  return false;
#endif
}

}  // namespace sieve
