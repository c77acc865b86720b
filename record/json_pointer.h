// Small helpers for naming where a problem is: JSON pointer tokens and the one Status that
// carries a list of problems.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "record/status.h"

namespace safegate {
namespace record {

// An object key as one JSON pointer token (RFC 6901: "~" -> "~0", "/" -> "~1").
std::string JsonPointerToken(std::string_view key);

}  // namespace record

// kInvalidInput carrying `problems`, its detail the one problem or the count and the first:
// "/subject: required field missing", "3 problems; the first: /a: bad".
Status InvalidProblems(std::vector<Problem> problems);

}  // namespace safegate
