// Status and Result<T>: errors as values.
//
// turnout does not throw on the data plane or in the controller. A function that can fail
// returns a Status (no value) or a Result<T> (a value or a Status). TURNOUT_CHECK/TURNOUT_DCHECK
// (common/check.h) are for turnout's own bugs only, never for input.
//
// Example:
//   Result<Config> LoadConfig(const std::string& path);
//   ...
//   TURNOUT_ASSIGN_OR_RETURN(Config config, LoadConfig(path));
//   TURNOUT_RETURN_IF_ERROR(Validate(config));

#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "common/check.h"

namespace turnout {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller's input is wrong (config, flags, request body)
  kNotFound,            // a named thing does not exist
  kAlreadyExists,       // a named thing exists already
  kFailedPrecondition,  // the system is not in a state where this can be done
  kUnavailable,         // a peer could not be reached; retrying may help
  kDeadlineExceeded,    // a deadline passed before the work finished
  kAborted,             // the work was stopped (by a user or a conflict)
  kIoError,             // the operating system refused an I/O operation
  kInternal,            // turnout's own bug
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid argument: weight must be within 0..100" (or "OK").
  std::string ToString() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status FailedPrecondition(std::string message);
Status Unavailable(std::string message);
Status DeadlineExceeded(std::string message);
Status Aborted(std::string message);
Status IoError(std::string message);
Status Internal(std::string message);
// An IoError whose message ends with strerror(errnum).
Status ErrnoError(std::string_view what, int errnum);

namespace internal {
// Aborts with "turnout: value() of a Result that holds an error: <status>" on stderr.
[[noreturn]] void DieOnValueOfError(const Status& status);
}  // namespace internal

// A value of type T, or the Status that explains why there is none.
//
// value(), operator* and operator-> on a Result that holds an error are turnout's own bug: they
// abort the process with a message naming the status, in every build type (never undefined
// behaviour). Check ok() first, or use TURNOUT_ASSIGN_OR_RETURN or value_or.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    TURNOUT_DCHECK(!status_.ok(), "a Result made from a Status needs an error");
    if (status_.ok()) status_ = Internal("Result constructed from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    if (!ok()) [[unlikely]]
      internal::DieOnValueOfError(status_);
    return *value_;
  }
  const T& value() const& {
    if (!ok()) [[unlikely]]
      internal::DieOnValueOfError(status_);
    return *value_;
  }
  T&& value() && {
    if (!ok()) [[unlikely]]
      internal::DieOnValueOfError(status_);
    return std::move(*value_);
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }

 private:
  std::optional<T> value_;
  Status status_;  // OK exactly when value_ holds a value
};

}  // namespace turnout

#define TURNOUT_STATUS_CONCAT_INNER(a, b) a##b
#define TURNOUT_STATUS_CONCAT(a, b) TURNOUT_STATUS_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define TURNOUT_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::turnout::Status turnout_status_ = (expr);        \
    if (!turnout_status_.ok()) return turnout_status_; \
  } while (0)

// `lhs = value of rexpr`, or returns its Status from the enclosing function.
#define TURNOUT_ASSIGN_OR_RETURN(lhs, rexpr) \
  TURNOUT_ASSIGN_OR_RETURN_IMPL(TURNOUT_STATUS_CONCAT(turnout_result_, __LINE__), lhs, rexpr)
#define TURNOUT_ASSIGN_OR_RETURN_IMPL(result, lhs, rexpr) \
  auto result = (rexpr);                                  \
  if (!result.ok()) return result.status();               \
  lhs = std::move(result).value()
