// Whole-file reads, atomic writes and CRC32 (file_io.h).
#include "framework/file_io.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>

namespace sieve {

Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what,
                           const AtomicWriteOptions& options) {
  const std::string temporary = path + ".tmp";
  FILE* file = std::fopen(temporary.c_str(), "wb");
  SIEVE_ENSURE(file != nullptr, StatusCode::kUnavailable,
               "cannot write " << what << " to '" << temporary << "': " << std::strerror(errno) << "; '" << path
                               << "' is unchanged");
  auto write = [file](std::string_view part) {
    return std::fwrite(part.data(), 1, part.size(), file) == part.size() && std::fflush(file) == 0;
  };
  bool written = true;
  if (options.interrupt) {
    const size_t first = std::min(options.interrupt_after, bytes.size());
    written = write(bytes.substr(0, first));
    if (written) options.interrupt();
    bytes.remove_prefix(first);
  }
  written = written && write(bytes) && fsync(fileno(file)) == 0;
  const int write_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed) {
    const int error = written ? errno : write_errno;
    std::remove(temporary.c_str());
    return SIEVE_ERROR(StatusCode::kUnavailable, "writing " << what << " to '" << temporary
                                                            << "' failed: " << std::strerror(error) << "; '" << path
                                                            << "' is unchanged");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    std::remove(temporary.c_str());
    return SIEVE_ERROR(StatusCode::kUnavailable, "cannot move '" << temporary << "' to '" << path
                                                                 << "': " << std::strerror(rename_errno) << "; '"
                                                                 << path << "' is unchanged");
  }
  return Status::Ok();
}

StatusOr<std::string> ReadFileBytes(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  SIEVE_ENSURE(in.good(), StatusCode::kNotFound, "cannot open " << what << " file '" << path << "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SIEVE_ENSURE(!in.bad(), StatusCode::kUnavailable, "reading " << what << " file '" << path << "' failed");
  return bytes;
}

uint32_t Crc32(std::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes at most uInt bytes per call.
  while (!bytes.empty()) {
    const size_t chunk = std::min<size_t>(bytes.size(), size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(chunk));
    bytes.remove_prefix(chunk);
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace sieve
