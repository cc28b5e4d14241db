// Tests for the IDX reader: tiny files written on the fly, plain and gzip, every element type, and
// every malformed-file error, each of which must name the file.
#include "runtime/data/idx.h"

#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sieve::runtime {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ =
        fs::temp_directory_path() / ("sieve_idx_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void AppendBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

std::string IdxHeader(uint8_t type_code, const std::vector<uint32_t>& dims) {
  std::string out = {'\0', '\0', static_cast<char>(type_code), static_cast<char>(dims.size())};
  for (uint32_t d : dims) AppendBigEndian(out, d, 4);
  return out;
}

void WriteFile(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile file = gzopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    if (!bytes.empty()) REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) > 0);
    REQUIRE(gzclose(file) == Z_OK);
  } else {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
  }
}

std::string ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `bytes` (plain) and reads it back, expecting an error whose message names the file.
Status ReadBad(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.File(name);
  WriteFile(path, bytes, false);
  auto result = ReadIdx(path);
  REQUIRE_FALSE(result.ok());
  CHECK_THAT(result.status().message(), Catch::StartsWith(path + ": "));
  return result.status();
}

TEST_CASE("ReadIdx reads uint8 arrays from plain and gzip files", "[runtime][idx]") {
  TempDir dir;
  std::string bytes = IdxHeader(0x08, {3, 2, 4});
  std::vector<uint8_t> expected(24);
  for (size_t i = 0; i < expected.size(); ++i) {
    expected[i] = static_cast<uint8_t>(i * 11);
    bytes.push_back(static_cast<char>(expected[i]));
  }
  for (bool gzip : {false, true}) {
    INFO("gzip " << gzip);
    // The name carries no meaning: zlib recognises gzip by content.
    const std::string path = dir.File(gzip ? "a.idx.gz" : "a.idx");
    WriteFile(path, bytes, gzip);
    if (gzip) CHECK(ReadRaw(path).substr(0, 2) == "\x1f\x8b");
    auto array = ReadIdx(path);
    REQUIRE(array.ok());
    CHECK(array->type() == IdxType::kUInt8);
    CHECK(array->dims == std::vector<int64_t>{3, 2, 4});
    CHECK(array->numel() == 24);
    CHECK(array->DimsString() == "3x2x4");
    CHECK(std::get<std::vector<uint8_t>>(array->values) == expected);
  }
}

template <typename T>
void CheckRoundTrip(const TempDir& dir, IdxType type, const std::vector<T>& values) {
  std::string bytes = IdxHeader(static_cast<uint8_t>(type), {static_cast<uint32_t>(values.size())});
  for (T v : values) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));  // little-endian host: the low sizeof(T) bytes
    AppendBigEndian(bytes, bits, sizeof(T));
  }
  const std::string path = dir.File(std::string(IdxTypeName(type)) + ".idx.gz");
  WriteFile(path, bytes, true);
  auto array = ReadIdx(path);
  REQUIRE(array.ok());
  CHECK(array->type() == type);
  CHECK(array->dims == std::vector<int64_t>{static_cast<int64_t>(values.size())});
  CHECK(std::get<std::vector<T>>(array->values) == values);
}

TEST_CASE("ReadIdx decodes every IDX element type from big-endian", "[runtime][idx]") {
  TempDir dir;
  CHECK(IdxTypeSize(IdxType::kFloat64) == 8);
  CheckRoundTrip<uint8_t>(dir, IdxType::kUInt8, {0, 1, 127, 128, 255});
  CheckRoundTrip<int8_t>(dir, IdxType::kInt8, {-128, -1, 0, 1, 127});
  CheckRoundTrip<int16_t>(dir, IdxType::kInt16, {-32768, -2, 0, 258, 32767});
  CheckRoundTrip<int32_t>(dir, IdxType::kInt32, {-2147483647 - 1, -70000, 0, 16909060, 2147483647});
  CheckRoundTrip<float>(dir, IdxType::kFloat32, {-1.5f, 0.0f, 3.14159f, 1e-30f, 6.5e37f});
  CheckRoundTrip<double>(dir, IdxType::kFloat64, {-2.25, 0.0, 2.718281828459045, 1e-300, 1e300});
}

TEST_CASE("ReadIdx accepts empty arrays", "[runtime][idx]") {
  TempDir dir;
  const std::string path = dir.File("empty.idx");
  WriteFile(path, IdxHeader(0x0C, {0, 5}), false);
  auto array = ReadIdx(path);
  REQUIRE(array.ok());
  CHECK(array->numel() == 0);
  CHECK(std::get<std::vector<int32_t>>(array->values).empty());
  // One zero extent empties the array, however large the others.
  WriteFile(path, IdxHeader(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0}), true);
  auto wide = ReadIdx(path);
  REQUIRE(wide.ok());
  CHECK(wide->numel() == 0);
  CHECK(wide->dims.size() == 4);
}

TEST_CASE("ReadIdx errors name the file and what is wrong", "[runtime][idx]") {
  TempDir dir;
  SECTION("missing file") {
    const std::string path = dir.File("nope.gz");
    auto result = ReadIdx(path);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kNotFound);
    CHECK_THAT(result.status().message(), Catch::StartsWith(path + ": no such file"));
  }
  SECTION("a directory") {
    auto result = ReadIdx(dir.File(""));
    REQUIRE_FALSE(result.ok());
    CHECK_THAT(result.status().message(), Catch::Contains("not a regular file"));
  }
  SECTION("shorter than the magic") {
    Status s = ReadBad(dir, "short", std::string("\0\0", 2));
    CHECK(s.code() == StatusCode::kDataLoss);
    CHECK_THAT(s.message(), Catch::Contains("truncated: 2 bytes"));
  }
  SECTION("bad magic") {
    Status s = ReadBad(dir, "magic", "\x01\x02\x08\x01" + std::string(4, '\0'));
    CHECK(s.code() == StatusCode::kDataLoss);
    CHECK_THAT(s.message(), Catch::Contains("bad magic 0x01020801"));
  }
  SECTION("unknown type code") {
    Status s = ReadBad(dir, "dtype", IdxHeader(0x07, {1}) + "x");
    CHECK_THAT(s.message(), Catch::Contains("unknown IDX type code 0x07") && Catch::Contains("0x08 uint8"));
  }
  SECTION("rank 0") {
    Status s = ReadBad(dir, "rank0", IdxHeader(0x08, {}));
    CHECK_THAT(s.message(), Catch::Contains("rank 0"));
  }
  SECTION("file ends inside the dimensions") {
    Status s = ReadBad(dir, "dims", IdxHeader(0x08, {10, 28, 28}).substr(0, 10));
    CHECK_THAT(s.message(),
               Catch::Contains("truncated") && Catch::Contains("rank 3 (12 bytes") && Catch::Contains("file has 6"));
  }
  SECTION("file shorter than its header says") {
    Status s = ReadBad(dir, "train-images-idx3-ubyte", IdxHeader(0x08, {10, 28, 28}) + std::string(1234, 'a'));
    CHECK(s.code() == StatusCode::kDataLoss);
    CHECK_THAT(s.message(), Catch::Contains("truncated: header says 10x28x28 uint8 = 7840 bytes") &&
                                Catch::Contains("file has 1234"));
  }
  SECTION("multi-byte elements cut mid-element") {
    Status s = ReadBad(dir, "int32", IdxHeader(0x0C, {3}) + std::string(10, 'a'));
    CHECK_THAT(s.message(), Catch::Contains("header says 3 int32 = 12 bytes after the 8-byte header, file has 10"));
  }
  SECTION("a header claiming terabytes fails without allocating them") {
    Status s = ReadBad(dir, "huge", IdxHeader(0x0E, {65535, 65535, 65535}) + std::string(100, 'a'));
    CHECK_THAT(s.message(), Catch::Contains("truncated") && Catch::Contains("file has 100"));
  }
  SECTION("sizes that overflow") {
    Status s = ReadBad(dir, "overflow", IdxHeader(0x08, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}));
    CHECK_THAT(s.message(), Catch::Contains("4294967295x4294967295x4294967295") &&
                                Catch::Contains("more bytes than any file can hold"));
  }
  SECTION("trailing data") {
    Status s = ReadBad(dir, "long", IdxHeader(0x08, {4}) + "abcdefg");
    CHECK_THAT(s.message(),
               Catch::Contains("trailing data") && Catch::Contains("= 4 bytes") && Catch::Contains("file has 7"));
  }
  SECTION("gzip stream cut short") {
    // Incompressible data so that cutting the compressed file also cuts the array.
    std::string bytes = IdxHeader(0x08, {20000});
    uint32_t x = 12345;
    for (int i = 0; i < 20000; ++i) {
      x = x * 1664525u + 1013904223u;
      bytes.push_back(static_cast<char>(x >> 24));
    }
    const std::string full = dir.File("full.gz");
    WriteFile(full, bytes, true);
    const std::string compressed = ReadRaw(full);
    const std::string path = dir.File("cut.gz");
    WriteFile(path, compressed.substr(0, compressed.size() / 2), false);
    auto result = ReadIdx(path);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(result.status().message(), Catch::StartsWith(path + ": truncated: header says 20000 uint8") &&
                                              Catch::Contains("(decompressed; the gzip stream ends early)"));
  }
  SECTION("corrupt gzip stream") {
    const std::string full = dir.File("good.gz");
    WriteFile(full, IdxHeader(0x08, {4000}) + std::string(4000, 'z'), true);
    std::string compressed = ReadRaw(full);
    // Garbage right after the 10-byte gzip header: an invalid deflate block type.
    for (size_t i = 10; i < 16; ++i) compressed[i] = '\xFF';
    const std::string path = dir.File("corrupt.gz");
    WriteFile(path, compressed, false);
    auto result = ReadIdx(path);
    REQUIRE_FALSE(result.ok());
    CHECK(result.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(result.status().message(), Catch::StartsWith(path + ": corrupt gzip data: "));
    // zlib's own message repeats the path; it is said once.
    CHECK(result.status().message().find(path, 1) == std::string::npos);
  }
}

}  // namespace
}  // namespace sieve::runtime
