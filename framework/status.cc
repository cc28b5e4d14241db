// Status names, messages and the fatal check handler.
#include "framework/status.h"

#include <cstdio>

namespace sieve {

namespace {
constexpr const char* kStatusCodeNames[] = {
    "OK",           "INVALID_ARGUMENT", "NOT_FOUND", "OUT_OF_RANGE",       "UNIMPLEMENTED",
    "INTERNAL",     "UNAVAILABLE",      "DATA_LOSS", "FAILED_PRECONDITION",
};
static_assert(std::size(kStatusCodeNames) == static_cast<size_t>(StatusCode::kCount),
              "every StatusCode needs a name");
}  // namespace

const char* StatusCodeName(StatusCode code) { return kStatusCodeNames[static_cast<int>(code)]; }

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

Status MakeStatus(StatusCode code, const std::string& message, const char* file, int line) {
  std::ostringstream os;
  os << message << " (" << file << ":" << line << ")";
  return Status(code, os.str());
}

namespace internal {
void CheckFailed(const char* file, int line, const char* condition, const std::string& message) {
  std::fprintf(stderr, "%s:%d: check failed: %s %s\n", file, line, condition, message.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

}  // namespace sieve
