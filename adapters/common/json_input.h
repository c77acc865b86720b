// Strict JSON reading for JSON exports (FHIR): the text is parsed without exceptions, with
// the byte position of a syntax error, a bound on nesting, and duplicate object keys refused
// (two "status" members could be read differently by two systems).
//
// Thread-safety: pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "adapters/common/problems.h"

namespace safegate::adapters {

inline constexpr size_t kMaxJsonDepth = 64;

// The parsed value, or nullopt with problems added ("line 3, column 14" for syntax errors, a
// JSON pointer for duplicate keys).
std::optional<nlohmann::json> ParseJsonStrict(std::string_view input, ProblemList& problems);

// "/entry/3/resource" + "status" -> "/entry/3/resource/status" (escaping '~' and '/').
std::string JsonPointer(std::string_view base, std::string_view token);
std::string JsonPointer(std::string_view base, size_t index);

}  // namespace safegate::adapters
