// The printable page of a subject access report (`safegatectl audit export --format html`,
// docs/subject-access.md): the JSON of GET /v1/audit/subjects/{ref}/report rendered as one
// self-contained HTML document a person can read and print. Inline CSS only, no scripts, no
// external resources (a Content-Security-Policy says so to the browser), and every string from
// the report HTML-escaped: reasons and recorded override text are free text.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace safegate::ctl {

// `text` with &, <, >, " and ' replaced by character references.
std::string HtmlEscape(std::string_view text);

// The page for `report`. Members the page expects but the report lacks (or has of another
// type) are shown as "not recorded"; never throws.
std::string RenderSubjectReportHtml(const nlohmann::json& report);

}  // namespace safegate::ctl
