// Status and StatusOr: how Sieve reports recoverable errors at API boundaries,
// and the SIEVE_CHECK macros for invariants (programming errors), which carry file and line.
#pragma once

#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>

namespace sieve {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kOutOfRange,
  kUnimplemented,
  kInternal,
  kUnavailable,
  kDataLoss,
  kFailedPrecondition,
  kCount,  // keep last
};

const char* StatusCodeName(StatusCode code);

/// The outcome of an operation: OK, or a code with a human-readable message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "INVALID_ARGUMENT: message", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// A value of type T, or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status)  // NOLINT: implicit by design
      : status_(status.ok() ? Status(StatusCode::kInternal, "StatusOr constructed from an OK status")
                            : std::move(status)) {}

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

namespace internal {
// Builds a message from stream insertions; used by the macros below.
class MessageBuilder {
 public:
  template <typename T>
  MessageBuilder& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }
  std::string str() const { return stream_.str(); }

 private:
  std::ostringstream stream_;
};

[[noreturn]] void CheckFailed(const char* file, int line, const char* condition, const std::string& message);
}  // namespace internal

/// Builds a Status whose message ends with " (file:line)".
Status MakeStatus(StatusCode code, const std::string& message, const char* file, int line);

}  // namespace sieve

/// Aborts with file, line, the condition and an optional streamed message. For invariants only:
/// anything a user can cause (bad input, bad shapes) returns a Status instead.
#define SIEVE_CHECK(cond, ...)                                                                    \
  do {                                                                                            \
    if (!(cond)) [[unlikely]] {                                                                   \
      ::sieve::internal::CheckFailed(__FILE__, __LINE__, #cond,                                   \
                                     (::sieve::internal::MessageBuilder() __VA_OPT__(<<) __VA_ARGS__).str()); \
    }                                                                                             \
  } while (0)

#define SIEVE_CHECK_EQ(a, b, ...) SIEVE_CHECK((a) == (b), "(" << (a) << " vs " << (b) << ") " __VA_OPT__(<<) __VA_ARGS__)

/// Returns a Status of the given code whose message is streamed and tagged with file and line.
#define SIEVE_ERROR(code, ...) \
  ::sieve::MakeStatus((code), (::sieve::internal::MessageBuilder() << __VA_ARGS__).str(), __FILE__, __LINE__)

/// Returns early from the enclosing function when `cond` is false.
#define SIEVE_ENSURE(cond, code, ...)           \
  do {                                          \
    if (!(cond)) [[unlikely]] {                 \
      return SIEVE_ERROR((code), __VA_ARGS__);  \
    }                                           \
  } while (0)

/// Propagates a non-OK Status to the caller.
#define SIEVE_RETURN_IF_ERROR(expr)               \
  do {                                            \
    ::sieve::Status _sieve_status = (expr);       \
    if (!_sieve_status.ok()) return _sieve_status; \
  } while (0)

#define SIEVE_CONCAT_INNER(a, b) a##b
#define SIEVE_CONCAT(a, b) SIEVE_CONCAT_INNER(a, b)
/// `SIEVE_ASSIGN_OR_RETURN(auto x, MaybeX());` binds the value or propagates the error.
#define SIEVE_ASSIGN_OR_RETURN(lhs, expr) \
  SIEVE_ASSIGN_OR_RETURN_IMPL(SIEVE_CONCAT(_sieve_statusor_, __LINE__), lhs, expr)
#define SIEVE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

/// Aborts if a Status-returning call fails; for tests, examples and tools where failure is fatal.
#define SIEVE_CHECK_OK(expr)                                                     \
  do {                                                                           \
    ::sieve::Status _sieve_status = (expr);                                      \
    SIEVE_CHECK(_sieve_status.ok(), _sieve_status.ToString());                   \
  } while (0)
