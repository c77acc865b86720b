// Small, pure parsing helpers for the HTTP layer: request targets, percent-decoding, query
// strings, media types, RFC 3339 timestamps and JSON bodies.
//
// They exist apart from the server so that every rule about untrusted request text is in
// one place and unit-tested without sockets. None of them throws; each returns a Status of
// kBadRequest whose detail names what was wrong and where.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::server {

// Decodes %XX escapes. '+' is left as is (RFC 3986 gives it no special meaning, and RFC 3339
// offsets such as "+01:00" must survive unencoded). Rejects a malformed escape and any
// decoded control character (including NUL), naming `what` in the error.
Result<std::string> PercentDecode(std::string_view text, std::string_view what);

// An origin-form request target split into decoded path segments and decoded query
// parameters. "/v1/mailbox/abc/ack?x=1" -> segments {"v1", "mailbox", "abc", "ack"}.
struct Target {
  std::vector<std::string> segments;
  std::map<std::string, std::string> query;  // each parameter at most once
};
// Errors: not origin-form, empty path segment, bad escape, repeated query parameter.
Result<Target> ParseTarget(std::string_view target);

// True when `content_type` is application/json (any case, parameters allowed). A charset
// parameter, if present, must be utf-8.
bool IsJsonMediaType(std::string_view content_type);

// RFC 3339 date-time ("2024-05-01T10:00:00Z", "...T10:00:00.250+01:00") to milliseconds
// since the Unix epoch. Returns nullopt when the text is not one.
std::optional<int64_t> ParseRfc3339Ms(std::string_view text);

// Parses a request body as JSON. On failure: kBadRequest "malformed JSON at byte offset N:
// ...", N counted from 0. Nesting deeper than kMaxJsonDepth is refused the same way, so that
// no later recursive walk of the value can exhaust the stack.
inline constexpr int kMaxJsonDepth = 64;
Result<nlohmann::json> ParseJsonBody(std::string_view body);

// Parses a decimal integer in [min, max] given as query parameter `name`.
Result<int64_t> ParseIntParam(std::string_view name, std::string_view text, int64_t min,
                              int64_t max);

// True for a slug: 1..64 characters of [a-z0-9_-] (agency ids, purposes, actions).
bool IsSlug(std::string_view text);
// True for an opaque identifier or cursor: 1..256 printable ASCII characters, no space.
bool IsToken(std::string_view text);

}  // namespace safegate::server
