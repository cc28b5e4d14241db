// The BLAS MatMul's packing workspace: one grow-only, 64-byte aligned buffer per calling thread,
// holding the gathered operands and the output block that is scattered afterwards. It only ever
// grows, so steady-state training (the same shapes every iteration) allocates nothing.
// Private to the CPU backend; exposed here so tests can check that it stops growing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

namespace sieve::ops::cpu {

class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  /// At least `floats` floats, 64-byte aligned; contents are unspecified.
  float* Reserve(int64_t floats) {
    const size_t bytes = static_cast<size_t>(floats) * sizeof(float);
    if (bytes > capacity_) {
      buffer_.reset(static_cast<float*>(::operator new (bytes, std::align_val_t{kAlignment})));
      capacity_ = bytes;
      ++grow_count_;
    }
    return buffer_.get();
  }
  size_t capacity_bytes() const { return capacity_; }
  int64_t grow_count() const { return grow_count_; }

  /// Floats to reserve for one region of `floats` so the next region stays 64-byte aligned.
  static int64_t Aligned(int64_t floats) {
    constexpr int64_t kFloats = kAlignment / sizeof(float);
    return (floats + kFloats - 1) / kFloats * kFloats;
  }

  /// The calling thread's workspace.
  static Workspace& ThisThread() {
    thread_local Workspace workspace;
    return workspace;
  }

 private:
  static constexpr size_t kAlignment = 64;
  struct Free {
    void operator()(float* p) const { ::operator delete (p, std::align_val_t{kAlignment}); }
  };
  std::unique_ptr<float, Free> buffer_;
  size_t capacity_ = 0;
  int64_t grow_count_ = 0;
};

}  // namespace sieve::ops::cpu
