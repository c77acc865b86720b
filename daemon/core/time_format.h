// RFC 3339 timestamps as the API and the audit log write them: UTC, millisecond precision,
// "2026-11-21T17:34:00.123Z". Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace safegate::core {

// Milliseconds since the Unix epoch -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (always 3 fraction
// digits, always "Z"). Years 0000..9999 only; outside that range the result is clamped.
std::string FormatTimeMs(int64_t ms);

// Parses an RFC 3339 date-time ("2026-11-21T17:34:00Z", "...00.5+01:00", fraction of 1..9
// digits, truncated to milliseconds; 't'/'z' accepted) into milliseconds since the epoch.
// nullopt when the text is not such a date-time or names an impossible date or time.
std::optional<int64_t> ParseTimeMs(std::string_view text);

}  // namespace safegate::core
