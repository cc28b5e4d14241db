// Binary files of Sieve (weights files, snapshots): whole-file reads, atomic writes, CRC32, and the
// little-endian encoding of their fields (ByteWriter / ByteReader). It knows no file layout: the
// layouts are runtime/trainer.cc's weights files and runtime/checkpoint.cc's snapshots
// (docs/checkpoints.md).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "framework/status.h"

namespace sieve {

static_assert(std::endian::native == std::endian::little, "Sieve's binary files are written in host byte order");

/// Test hook of WriteFileAtomically: `interrupt` runs once the first `interrupt_after` bytes of the temporary
/// file are written and flushed, before the rest (a crash test raises SIGKILL in it).
struct AtomicWriteOptions {
  size_t interrupt_after = 0;
  std::function<void()> interrupt;
};

/// Writes `bytes` to `path` + ".tmp", flushes and fsyncs it, then renames it over `path`, so `path` holds either
/// its previous contents or all of `bytes`, whenever the process stops. `what` names the contents in errors
/// ("weights", "snapshot"); errors name both paths and say that `path` is unchanged. A stale temporary file of an
/// earlier interrupted write is overwritten.
Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what,
                           const AtomicWriteOptions& options = {});

/// The whole contents of `path`; NOT_FOUND names `what` and the path.
StatusOr<std::string> ReadFileBytes(const std::string& path, std::string_view what);

/// The CRC-32 (zlib's, polynomial 0xEDB88320) of `bytes`.
uint32_t Crc32(std::string_view bytes);

/// Appends fields in host (little-endian) byte order.
class ByteWriter {
 public:
  /// A trivially copyable value, as its bytes.
  template <typename T>
  void Put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  /// `count` values of a trivially copyable type, back to back.
  template <typename T>
  void PutArray(const T* values, size_t count) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes_.append(reinterpret_cast<const char*>(values), count * sizeof(T));
  }
  /// A uint32 length, then the characters.
  void PutString(std::string_view text) {
    Put(static_cast<uint32_t>(text.size()));
    bytes_.append(text);
  }
  const std::string& bytes() const { return bytes_; }
  std::string Take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

/// Reads what ByteWriter wrote. Every read returns false, reads nothing and leaves the reader failed once the
/// bytes run out, so a sequence of reads can be checked once at the end.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    return GetArray(&value, 1);
  }
  template <typename T>
  bool GetArray(T* values, size_t count) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!ok_ || count > remaining() / sizeof(T)) return ok_ = false;
    std::memcpy(values, bytes_.data() + at_, count * sizeof(T));
    at_ += count * sizeof(T);
    return true;
  }
  /// A string of at most `max_size` characters.
  bool GetString(std::string& text, size_t max_size = size_t{1} << 16) {
    uint32_t size = 0;
    if (!Get(size) || size > max_size || size > remaining()) return ok_ = false;
    text.assign(bytes_.data() + at_, size);
    at_ += size;
    return true;
  }
  /// Whether every read so far succeeded.
  bool ok() const { return ok_; }
  size_t remaining() const { return bytes_.size() - at_; }
  size_t offset() const { return at_; }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
  bool ok_ = true;
};

}  // namespace sieve
