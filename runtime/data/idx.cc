// IDX reading through zlib. gzread reads gzip and plain files alike (zlib's "transparent" mode), so
// one code path serves both; the element buffer grows geometrically with what the file really
// holds, so a corrupt header that claims terabytes fails as "truncated" instead of allocating them.
#include "runtime/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace sieve::runtime {

namespace {

constexpr int64_t kMagicBytes = 4;
constexpr int64_t kGrowthStepBytes = int64_t{1} << 20;
// gzread takes an unsigned count and returns an int, so one call moves at most this much.
constexpr int64_t kMaxReadBytes = int64_t{1} << 30;

bool IsKnownType(uint8_t code) {
  switch (static_cast<IdxType>(code)) {
    case IdxType::kUInt8:
    case IdxType::kInt8:
    case IdxType::kInt16:
    case IdxType::kInt32:
    case IdxType::kFloat32:
    case IdxType::kFloat64:
      return true;
  }
  return false;
}

std::string Hex(uint32_t value, int digits) {
  std::ostringstream os;
  os << "0x" << std::hex << std::uppercase;
  os.width(digits);
  os.fill('0');
  os << value;
  return os.str();
}

// An open gzFile that remembers how many bytes it delivered and why it stopped.
class GzInput {
 public:
  GzInput(gzFile file, std::string path) : file_(file), path_(std::move(path)) { gzbuffer(file_, 1 << 18); }
  ~GzInput() { gzclose(file_); }
  GzInput(const GzInput&) = delete;
  GzInput& operator=(const GzInput&) = delete;

  // Reads up to `n` bytes into `dst`; returns the count, which is short only at the end of the
  // data or on an error (then error() is non-empty).
  int64_t Read(void* dst, int64_t n) {
    auto* out = static_cast<char*>(dst);
    int64_t done = 0;
    while (done < n && error_.empty()) {
      const int got = gzread(file_, out + done, static_cast<unsigned>(std::min(n - done, kMaxReadBytes)));
      if (got > 0) {
        done += got;
        continue;
      }
      const int saved_errno = errno;
      int errnum = Z_OK;
      const char* message = gzerror(file_, &errnum);
      // zlib reports a gzip stream that stops early as Z_BUF_ERROR, and then returns 0 like at a
      // clean end; the caller describes that truncation better than zlib can.
      if (errnum == Z_BUF_ERROR) {
        cut_short_ = true;
      } else if (got < 0 || errnum != Z_OK) {
        error_ = Describe(errnum, message, saved_errno);
      }
      break;
    }
    total_ += done;
    return done;
  }

  // Counts the bytes left until the end of the data.
  int64_t Drain() {
    std::array<char, 1 << 16> sink;
    int64_t rest = 0;
    for (int64_t got; (got = Read(sink.data(), static_cast<int64_t>(sink.size()))) > 0;) rest += got;
    return rest;
  }

  // How the byte counts in messages are to be read: after decompression, and cut short or not.
  std::string CountNote() const {
    if (gzdirect(file_) != 0) return "";
    return cut_short_ ? " (decompressed; the gzip stream ends early)" : " (decompressed)";
  }
  const std::string& error() const { return error_; }
  int64_t total() const { return total_; }

 private:
  std::string Describe(int errnum, const char* message, int saved_errno) const {
    if (errnum == Z_ERRNO) return std::string("read error: ") + std::strerror(saved_errno);
    if (errnum == Z_MEM_ERROR) return "zlib is out of memory";
    // zlib prefixes its messages with the path, which our messages already start with.
    std::string text = message;
    if (text.rfind(path_ + ": ", 0) == 0) text.erase(0, path_.size() + 2);
    return (errnum == Z_DATA_ERROR ? "corrupt gzip data: " : "zlib error: ") + text;
  }

  gzFile file_;
  std::string path_;
  int64_t total_ = 0;
  bool cut_short_ = false;
  std::string error_;
};

template <typename T>
void SwapToHost(std::vector<T>& values) {
  if constexpr (sizeof(T) > 1 && std::endian::native == std::endian::little) {
    using Bits = std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>;
    for (T& v : values) {
      Bits bits;
      std::memcpy(&bits, &v, sizeof(T));
      if constexpr (sizeof(T) == 2) {
        bits = __builtin_bswap16(bits);
      } else if constexpr (sizeof(T) == 4) {
        bits = __builtin_bswap32(bits);
      } else {
        bits = __builtin_bswap64(bits);
      }
      std::memcpy(&v, &bits, sizeof(T));
    }
  }
}

// Reads `numel` elements, growing the buffer as data arrives; returns how many bytes were read.
template <typename T>
int64_t ReadElements(GzInput& in, int64_t numel, std::vector<T>& out) {
  const int64_t step = std::max<int64_t>(1, kGrowthStepBytes / static_cast<int64_t>(sizeof(T)));
  int64_t have = 0;
  while (have < numel) {
    const int64_t target = std::min(numel, std::max(have * 2, step));
    out.resize(static_cast<size_t>(target));
    const int64_t want = (target - have) * static_cast<int64_t>(sizeof(T));
    const int64_t got = in.Read(out.data() + have, want);
    if (got < want) return have * static_cast<int64_t>(sizeof(T)) + got;
    have = target;
  }
  SwapToHost(out);
  return numel * static_cast<int64_t>(sizeof(T));
}

IdxValues MakeValues(IdxType type) {
  switch (type) {
    case IdxType::kUInt8:
      return std::vector<uint8_t>();
    case IdxType::kInt8:
      return std::vector<int8_t>();
    case IdxType::kInt16:
      return std::vector<int16_t>();
    case IdxType::kInt32:
      return std::vector<int32_t>();
    case IdxType::kFloat32:
      return std::vector<float>();
    case IdxType::kFloat64:
      return std::vector<double>();
  }
  SIEVE_CHECK(false, "unhandled IDX type " << static_cast<int>(type));
  return {};
}

}  // namespace

const char* IdxTypeName(IdxType type) {
  switch (type) {
    case IdxType::kUInt8:
      return "uint8";
    case IdxType::kInt8:
      return "int8";
    case IdxType::kInt16:
      return "int16";
    case IdxType::kInt32:
      return "int32";
    case IdxType::kFloat32:
      return "float32";
    case IdxType::kFloat64:
      return "float64";
  }
  return "unknown";
}

size_t IdxTypeSize(IdxType type) {
  switch (type) {
    case IdxType::kUInt8:
    case IdxType::kInt8:
      return 1;
    case IdxType::kInt16:
      return 2;
    case IdxType::kInt32:
    case IdxType::kFloat32:
      return 4;
    case IdxType::kFloat64:
      return 8;
  }
  SIEVE_CHECK(false, "unhandled IDX type " << static_cast<int>(type));
  return 0;
}

IdxType IdxArray::type() const {
  // The alternatives of IdxValues are listed in this order.
  static constexpr IdxType kByIndex[] = {IdxType::kUInt8, IdxType::kInt8,    IdxType::kInt16,
                                         IdxType::kInt32, IdxType::kFloat32, IdxType::kFloat64};
  static_assert(std::size(kByIndex) == std::variant_size_v<IdxValues>);
  return kByIndex[values.index()];
}

int64_t IdxArray::numel() const {
  // Zero first: the product of the other extents may not fit when one extent empties the array.
  if (std::find(dims.begin(), dims.end(), 0) != dims.end()) return 0;
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::string IdxArray::DimsString() const {
  std::ostringstream os;
  for (size_t i = 0; i < dims.size(); ++i) os << (i ? "x" : "") << dims[i];
  return os.str();
}

StatusOr<IdxArray> ReadIdx(const std::string& path) {
  std::error_code ec;
  const auto file_status = std::filesystem::status(path, ec);
  SIEVE_ENSURE(std::filesystem::exists(file_status), StatusCode::kNotFound, path << ": no such file");
  SIEVE_ENSURE(std::filesystem::is_regular_file(file_status), StatusCode::kInvalidArgument,
               path << ": not a regular file");
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  SIEVE_ENSURE(file != nullptr, StatusCode::kUnavailable,
               path << ": cannot open: " << (errno ? std::strerror(errno) : "zlib out of memory"));
  GzInput in(file, path);

  std::array<uint8_t, kMagicBytes> magic{};
  const int64_t magic_bytes = in.Read(magic.data(), kMagicBytes);
  SIEVE_ENSURE(in.error().empty(), StatusCode::kDataLoss,
               path << ": " << in.error() << " after " << in.total() << " bytes" << in.CountNote());
  SIEVE_ENSURE(
      magic_bytes == kMagicBytes, StatusCode::kDataLoss,
      path << ": truncated: " << magic_bytes << " bytes" << in.CountNote() << ", too short for the 4-byte IDX magic");
  const uint32_t magic_value =
      (uint32_t{magic[0]} << 24) | (uint32_t{magic[1]} << 16) | (uint32_t{magic[2]} << 8) | uint32_t{magic[3]};
  SIEVE_ENSURE(magic[0] == 0 && magic[1] == 0, StatusCode::kDataLoss,
               path << ": bad magic " << Hex(magic_value, 8)
                    << ": an IDX file starts with two zero bytes, a type code and the rank");
  SIEVE_ENSURE(IsKnownType(magic[2]), StatusCode::kDataLoss,
               path << ": unknown IDX type code " << Hex(magic[2], 2)
                    << "; the format defines 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, "
                       "0x0E float64");
  const auto type = static_cast<IdxType>(magic[2]);
  const int rank = magic[3];
  SIEVE_ENSURE(rank > 0, StatusCode::kDataLoss,
               path << ": rank 0 in the magic; an IDX array has at least one dimension");

  std::vector<uint8_t> dim_bytes(static_cast<size_t>(4 * rank));
  const int64_t dims_read = in.Read(dim_bytes.data(), 4 * rank);
  SIEVE_ENSURE(in.error().empty(), StatusCode::kDataLoss,
               path << ": " << in.error() << " after " << in.total() << " bytes" << in.CountNote());
  SIEVE_ENSURE(dims_read == 4 * rank, StatusCode::kDataLoss,
               path << ": truncated: the magic declares rank " << rank << " (" << 4 * rank
                    << " bytes of dimensions), file has " << dims_read << " after the magic" << in.CountNote());

  IdxArray array;
  array.dims.resize(static_cast<size_t>(rank));
  for (size_t i = 0; i < array.dims.size(); ++i) {
    const uint8_t* b = &dim_bytes[4 * i];
    array.dims[i] =
        static_cast<int64_t>((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]});
  }
  const auto element_size = static_cast<int64_t>(IdxTypeSize(type));
  // A zero extent empties the array however large the others are.
  const bool empty = std::find(array.dims.begin(), array.dims.end(), 0) != array.dims.end();
  int64_t data_bytes = empty ? 0 : element_size;
  bool overflow = false;
  for (int64_t d : array.dims) overflow = overflow || __builtin_mul_overflow(data_bytes, d, &data_bytes);
  SIEVE_ENSURE(!overflow, StatusCode::kDataLoss,
               path << ": header says " << array.DimsString() << " " << IdxTypeName(type)
                    << ", more bytes than any file can hold");
  const int64_t header_bytes = kMagicBytes + 4 * rank;

  array.values = MakeValues(type);
  const int64_t numel = data_bytes / element_size;
  const int64_t got = std::visit([&](auto& values) { return ReadElements(in, numel, values); }, array.values);
  SIEVE_ENSURE(in.error().empty(), StatusCode::kDataLoss,
               path << ": " << in.error() << " after " << in.total() << " bytes" << in.CountNote());
  SIEVE_ENSURE(got == data_bytes, StatusCode::kDataLoss,
               path << ": truncated: header says " << array.DimsString() << " " << IdxTypeName(type) << " = "
                    << data_bytes << " bytes after the " << header_bytes << "-byte header, file has " << got
                    << in.CountNote());
  const int64_t trailing = in.Drain();
  SIEVE_ENSURE(in.error().empty(), StatusCode::kDataLoss,
               path << ": " << in.error() << " after " << in.total() << " bytes" << in.CountNote());
  SIEVE_ENSURE(trailing == 0, StatusCode::kDataLoss,
               path << ": trailing data: header says " << array.DimsString() << " " << IdxTypeName(type) << " = "
                    << data_bytes << " bytes after the " << header_bytes << "-byte header, file has "
                    << data_bytes + trailing << in.CountNote());
  return array;
}

}  // namespace sieve::runtime
