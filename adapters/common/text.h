// Small, strict text checks shared by every adapter: dates, timestamps, UTF-8, integers, and
// the opaque record ids derived for formats that carry none.
//
// All functions are pure. None allocates more than its result.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace safegate::adapters {

// ASCII whitespace trimmed from both ends.
std::string_view Trim(std::string_view s);
std::string ToLowerAscii(std::string_view s);
std::string ToUpperAscii(std::string_view s);

// True for a real calendar date written YYYY-MM-DD (years 1900..2199).
bool IsIsoDate(std::string_view s);

// An RFC 3339 timestamp ("2018-10-31T09:12:00Z", "2018-10-31T10:12:00+01:00",
// "2018-10-31T09:12:00.250Z") as UTC to the second: "2018-10-31T09:12:00Z". nullopt when the
// text is not one (a zone is required: a local time without offset is ambiguous).
std::optional<std::string> NormalizeTimestamp(std::string_view s);
// The same check and result, written into `*s` (left as it is when it is already UTC to the
// second, as most are: no new string). False, with `*s` unchanged, when it is not one.
bool NormalizeTimestampInPlace(std::string* s);
// NormalizeTimestamp(s).has_value(), without making the string.
bool IsTimestamp(std::string_view s);

// "YYYY-MM-DD" -> "YYYY-MM-DDT00:00:00Z". REQUIRES: IsIsoDate(date).
std::string StartOfDayUtc(std::string_view date);

// The byte offset of the first byte that is not part of valid UTF-8, or nullopt if all valid.
std::optional<size_t> FindInvalidUtf8(std::string_view s);

// 1-based line number of byte `offset` in `text`.
size_t LineAt(std::string_view text, size_t offset);

// A decimal integer in [min, max], nothing else (no sign unless negative, no spaces).
std::optional<int64_t> ParseInteger(std::string_view s, int64_t min, int64_t max);

// An opaque, deterministic record id for formats whose rows carry no id of their own:
// "<prefix>-<16 hex digits>" from a 64-bit FNV-1a digest of the parts. The parts (a child's
// id, an NHS number, dates) never appear in the id, because record ids travel in audit
// entries and mailbox listings outside the encrypted payload (DOMAIN.md R7). It is not a
// secret: it only keeps identifiers out of plain sight.
std::string DigestId(std::string_view prefix, std::initializer_list<std::string_view> parts);

// At most `max` bytes of `s` for quoting in a problem, cut on a UTF-8 boundary, "..." if cut.
std::string Excerpt(std::string_view s, size_t max = 40);

}  // namespace safegate::adapters
