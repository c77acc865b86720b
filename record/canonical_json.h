// Canonical JSON written piece by piece, for a caller that knows its object's members (an
// audit entry) and would otherwise build a JSON object only to serialize it. The bytes are
// those record::CanonicalJson (record.h) gives for the same value: the caller writes members
// in key order, with ',' and ':' between them. Thread-safe (no state).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace safegate::record {

// Appends CanonicalJson(value).
void AppendCanonicalJson(std::string& out, const nlohmann::json& value);
// Appends CanonicalJson(nlohmann::json(text)): the quoted, escaped string.
void AppendCanonicalJsonString(std::string& out, std::string_view text);

}  // namespace safegate::record
