// RenderFhirFlagBundle: canonical flag records -> a FHIR R4 Bundle of UK Core Flags.
#include <string>

#include "adapters/common/text.h"
#include "adapters/fhir/fhir_codes.h"
#include "adapters/fhir/fhir_flag.h"

namespace safegate::adapters {
namespace {

using nlohmann::json;

// FHIR ids are [A-Za-z0-9-.]{1,64}. A record id that is one is used as it is, so a Flag that
// came in as FHIR goes out with its own id; any other becomes an opaque digest (the record
// id itself still travels in Flag.identifier).
bool IsFhirId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string StringOr(const json& body, std::string_view key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json SubjectReference(const record::Subject& s) {
  if (s.nhs_number) {
    return {{"identifier", {{"system", fhir::kNhsNumberSystem}, {"value", *s.nhs_number}}}};
  }
  if (!s.local_ids.empty()) {
    return {{"identifier",
             {{"system", std::string(fhir::kLocalIdSystemPrefix) + s.local_ids.front().system},
              {"value", s.local_ids.front().value}}}};
  }
  return json::object();  // not reachable for a valid record: it always has an identifier
}

json RenderFlag(const record::Record& r) {
  const json& body = r.body;
  const std::string type = StringOr(body, "type");
  const fhir::FlagCode* code = fhir::FlagCodeForType(type);

  json flag = {{"resourceType", "Flag"}};
  flag["id"] = IsFhirId(r.source.record_id) ? r.source.record_id
                                            : DigestId("sg", {r.source.agency, r.source.record_id});
  flag["meta"] = {{"versionId", std::to_string(r.source.version)},
                  {"lastUpdated", r.source.recorded_at},
                  {"profile", {fhir::kUkCoreFlagProfile}}};

  json extensions = json::array();
  if (const std::string level = StringOr(body, "level"); !level.empty()) {
    extensions.push_back({{"url", fhir::kExtRiskLevel}, {"valueCode", level}});
  }
  if (const std::string review = StringOr(body, "review_by"); !review.empty()) {
    extensions.push_back({{"url", fhir::kExtReviewDate}, {"valueDate", review}});
  }
  if (auto c = body.find("contact"); c != body.end() && c->is_object()) {
    json parts = json::array();
    if (const std::string v = StringOr(*c, "office_hours"); !v.empty()) {
      parts.push_back({{"url", "office-hours"}, {"valueString", v}});
    }
    if (const std::string v = StringOr(*c, "out_of_hours"); !v.empty()) {
      parts.push_back({{"url", "out-of-hours"}, {"valueString", v}});
    }
    if (!parts.empty()) extensions.push_back({{"url", fhir::kExtContact}, {"extension", parts}});
  }
  if (const std::string note = StringOr(body, "note"); !note.empty()) {
    extensions.push_back({{"url", fhir::kExtNote}, {"valueString", note}});
  }
  if (!extensions.empty()) flag["extension"] = std::move(extensions);

  flag["identifier"] =
      json::array({{{"system", std::string(fhir::kRecordIdSystemPrefix) + r.source.agency},
                    {"value", r.source.record_id}}});
  const std::string status = StringOr(body, "status");
  flag["status"] = status == "entered_in_error" ? "entered-in-error" : status;
  flag["category"] = json::array({{{"coding", json::array({{{"system", fhir::kFlagCategorySystem},
                                                            {"code", "safety"},
                                                            {"display", "Safety"}}})}}});
  if (code != nullptr) {
    flag["code"] = {
        {"coding",
         json::array(
             {{{"system", code->system}, {"code", code->code}, {"display", code->display}}})},
        {"text", code->display}};
  } else {
    flag["code"] = {{"text", type}};  // a type the table lacks: not reachable for valid records
  }
  flag["subject"] = SubjectReference(r.subject);
  json period = {{"start", StringOr(body, "start")}};
  if (const std::string end = StringOr(body, "end"); !end.empty()) period["end"] = end;
  flag["period"] = std::move(period);
  flag["author"] = {
      {"type", "Organization"},
      {"identifier", {{"system", fhir::kAgencySystem}, {"value", StringOr(body, "owner_agency")}}}};
  return flag;
}

}  // namespace

nlohmann::json RenderFhirFlagBundle(const std::vector<record::Record>& records) {
  json entries = json::array();
  for (const record::Record& r : records) {
    if (r.kind != record::Kind::kFlag) continue;
    entries.push_back({{"resource", RenderFlag(r)}, {"search", {{"mode", "match"}}}});
  }
  const size_t total = entries.size();
  return {{"resourceType", "Bundle"},
          {"type", "searchset"},
          {"total", total},
          {"entry", std::move(entries)}};
}

}  // namespace safegate::adapters
