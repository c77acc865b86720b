// Status and Result<T>: how every run-time function in safegate reports failure.
//
// Exceptions are used only while loading configuration at start-up. Everywhere else a
// function returns a Status (no value) or a Result<T> (a value or a Status). The error
// codes are exactly the client-visible codes of the HTTP API, so a Status can be turned
// into the response body `{"error": CODE, "detail": TEXT, "problems": [...]}` in one place.
//
// Thread-safety: plain values; safe to copy between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace safegate {

enum class ErrorCode {
  kOk = 0,
  kBadRequest,            // 400 malformed request (not JSON, bad query parameter)
  kInvalidInput,          // 422 well-formed but invalid content; carries problems
  kUnauthenticated,       // 401 no usable client identity
  kForbidden,             // 403 identity known, not allowed
  kNotFound,              // 404
  kConflict,              // 409 idempotency key reused with other content
  kPayloadTooLarge,       // 413
  kUnsupportedMediaType,  // 415
  kTooManyRequests,       // 429
  kUnavailable,           // 503 shutting down, store unavailable
  kInternal,              // 500 broken invariant or I/O failure
};

// The API's code string ("bad_request", ...); "ok" for kOk.
std::string_view ErrorCodeName(ErrorCode code);
// The HTTP status the API uses for this code (200 for kOk).
int HttpStatusFor(ErrorCode code);
// Every code except kOk, for exhaustive tests.
const std::vector<ErrorCode>& AllErrorCodes();

// One thing wrong with an input: where (a JSON pointer such as "/record/subject/nhs_number",
// a CSV line "line 12, column dob", an XML path) and what (for a person).
struct Problem {
  std::string where;
  std::string what;
  bool operator==(const Problem&) const = default;
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorCode code, std::string detail, std::vector<Problem> problems = {})
      : code_(code), detail_(std::move(detail)), problems_(std::move(problems)) {}

  static Status Ok() { return Status(); }
  static Status BadRequest(std::string d) { return {ErrorCode::kBadRequest, std::move(d)}; }
  static Status Invalid(std::string d, std::vector<Problem> p = {}) {
    return {ErrorCode::kInvalidInput, std::move(d), std::move(p)};
  }
  static Status Unauthenticated(std::string d) {
    return {ErrorCode::kUnauthenticated, std::move(d)};
  }
  static Status Forbidden(std::string d) { return {ErrorCode::kForbidden, std::move(d)}; }
  static Status NotFound(std::string d) { return {ErrorCode::kNotFound, std::move(d)}; }
  static Status Conflict(std::string d) { return {ErrorCode::kConflict, std::move(d)}; }
  static Status Unavailable(std::string d) { return {ErrorCode::kUnavailable, std::move(d)}; }
  static Status Internal(std::string d) { return {ErrorCode::kInternal, std::move(d)}; }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& detail() const { return detail_; }
  const std::vector<Problem>& problems() const { return problems_; }
  // "invalid_input: record has 2 problems" — for logs and test failure messages.
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string detail_;
  std::vector<Problem> problems_;
};

// A value or the Status that explains why there is none.
// REQUIRES: a Result is never built from an OK Status. value() on a failed Result throws
// std::bad_optional_access (a broken invariant, so it should crash loudly).
// Stored as optional<T> plus Status rather than std::variant: GCC 12 at -O2 reports false
// -Wmaybe-uninitialized warnings when destroying a variant holding Status, which -Werror
// turns into build failures in every caller.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok());
  }
  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return value_.value(); }
  const T& value() const& { return value_.value(); }
  T&& value() && { return std::move(value_).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace safegate
