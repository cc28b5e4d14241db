// The IDX reader: the array format of MNIST and Fashion-MNIST, read from plain or gzip-compressed
// files. An IDX file is a 4-byte magic (two zero bytes, a type code, the rank), one big-endian
// uint32 per dimension, then the elements in row-major order, big-endian. This is a reader only;
// turning arrays into a training set is dataset.h's job.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "framework/status.h"

namespace sieve::runtime {

/// The element types the IDX format defines, by their type code (the third byte of the magic).
enum class IdxType : uint8_t {
  kUInt8 = 0x08,
  kInt8 = 0x09,
  kInt16 = 0x0B,
  kInt32 = 0x0C,
  kFloat32 = 0x0D,
  kFloat64 = 0x0E,
};
/// "uint8", "int8", "int16", "int32", "float32", "float64".
const char* IdxTypeName(IdxType type);
/// Bytes per element.
size_t IdxTypeSize(IdxType type);

/// The elements of an IDX array in host byte order; the alternative held is the file's type.
using IdxValues = std::variant<std::vector<uint8_t>, std::vector<int8_t>, std::vector<int16_t>, std::vector<int32_t>,
                               std::vector<float>, std::vector<double>>;

/// An IDX array as read from disk.
struct IdxArray {
  std::vector<int64_t> dims;
  IdxValues values;

  IdxType type() const;
  int64_t numel() const;
  /// "60000x28x28".
  std::string DimsString() const;
};

/// Reads the IDX file at `path`, gzip-compressed or plain (zlib tells them apart by content, so
/// the file name does not matter). Every error names `path` and says what was wrong: NOT_FOUND when
/// the file does not exist; DATA_LOSS for a bad magic, an unknown type code, a rank of 0, sizes
/// that overflow, a file shorter or longer than its header says, or a corrupt gzip stream.
StatusOr<IdxArray> ReadIdx(const std::string& path);

}  // namespace sieve::runtime
