#include "record/status.h"

#include "record/json_pointer.h"

namespace safegate {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kBadRequest:
      return "bad_request";
    case ErrorCode::kInvalidInput:
      return "invalid_input";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kPayloadTooLarge:
      return "payload_too_large";
    case ErrorCode::kUnsupportedMediaType:
      return "unsupported_media_type";
    case ErrorCode::kTooManyRequests:
      return "too_many_requests";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

int HttpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return 200;
    case ErrorCode::kBadRequest:
      return 400;
    case ErrorCode::kInvalidInput:
      return 422;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMediaType:
      return 415;
    case ErrorCode::kTooManyRequests:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

const std::vector<ErrorCode>& AllErrorCodes() {
  static const std::vector<ErrorCode> kAll = {
      ErrorCode::kBadRequest,      ErrorCode::kInvalidInput,
      ErrorCode::kUnauthenticated, ErrorCode::kForbidden,
      ErrorCode::kNotFound,        ErrorCode::kConflict,
      ErrorCode::kPayloadTooLarge, ErrorCode::kUnsupportedMediaType,
      ErrorCode::kTooManyRequests, ErrorCode::kUnavailable,
      ErrorCode::kInternal};
  return kAll;
}

std::string Status::ToString() const {
  std::string s(ErrorCodeName(code_));
  if (!detail_.empty()) s += ": " + detail_;
  for (const auto& p : problems_) s += "\n  at " + p.where + ": " + p.what;
  return s;
}

Status InvalidProblems(std::vector<Problem> p) {
  std::string detail =
      p.empty()        ? std::string("invalid input")
      : p.size() == 1 ? p[0].where + ": " + p[0].what
                      : std::to_string(p.size()) + " problems; the first: " + p[0].where + ": " +
                            p[0].what;
  return {ErrorCode::kInvalidInput, std::move(detail), std::move(p)};
}

}  // namespace safegate
