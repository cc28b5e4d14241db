// Devices and element types: where a tensor lives and what its elements are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sieve {

enum class DeviceType : uint8_t { kCPU, kCUDA, kCount };
const char* DeviceTypeName(DeviceType type);

/// A device a tensor can live on: the host, or one CUDA GPU.
struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;

  static Device CPU() { return {DeviceType::kCPU, 0}; }
  static Device CUDA(int index = 0) { return {DeviceType::kCUDA, index}; }
  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool is_cuda() const { return type == DeviceType::kCUDA; }
  std::string ToString() const;  // "cpu", "cuda:0"
  friend bool operator==(const Device&, const Device&) = default;
};

/// Element types. Only float32 has kernels today; the half types are here so that layouts,
/// sizes and checkpoints already account for them.
enum class DType : uint8_t { kFloat32, kFloat16, kBFloat16, kInt32, kCount };
const char* DTypeName(DType dtype);
size_t DTypeSize(DType dtype);

/// True when this build has the CUDA backend and a usable GPU is present.
bool CudaAvailable();
/// True when this build was compiled with the CUDA backend (whether or not a GPU is present).
constexpr bool CudaCompiled() {
#ifdef SIEVE_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace sieve
