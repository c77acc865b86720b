// The canonical record: the one shape every part of safegate speaks (adapters produce it,
// policy decides on it, the store keeps it, recipients receive it). docs/record-model.md
// defines every field; API.md shows an example.
//
// This library has no server code in it: adapters and policy link it alone.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/status.h"

namespace safegate::record {

enum class Kind { kFlag, kOccurrence, kReferral, kAssessment, kMissingEpisode, kPlan };
std::string_view KindName(Kind kind);  // "flag", "occurrence", ..., "missing_episode", "plan"
std::optional<Kind> ParseKind(std::string_view name);
const std::vector<Kind>& AllKinds();

struct LocalId {
  std::string system;  // "csc:<area>" or "police:<force>" (lower-case slug after the colon)
  std::string value;   // the id in that system, e.g. "BRA-000123"
  bool operator==(const LocalId&) const = default;
};

struct Subject {
  std::optional<std::string> nhs_number;  // 10 digits, modulus-11 check digit valid
  std::vector<LocalId> local_ids;
  std::optional<std::string> given_name;
  std::optional<std::string> family_name;
  std::optional<std::string> birth_date;  // YYYY-MM-DD
  std::optional<std::string> postcode;
  bool operator==(const Subject&) const = default;
};

struct Source {
  std::string agency;       // registered agency id; must equal the caller's
  std::string system;       // "niche", "fhir", "liquidlogic", ...
  std::string record_id;    // the id in the source system
  int64_t version = 1;      // >= 1; (agency, record_id, version) is the idempotency key
  std::string recorded_at;  // RFC 3339 UTC, e.g. "2018-10-31T09:12:00Z"
  bool operator==(const Source&) const = default;
};

struct Classification {
  bool special_category = false;  // UK GDPR Art 9 (health)
  bool criminal_offence = false;  // UK GDPR Art 10
  std::vector<int> schedule12a;   // LGA 1972 Sch 12A paragraphs, 1..7, ascending, unique
  std::string handling = "P";     // 3x5x2 handling code: "P" (permits sharing) or "C" (conditions)
  bool operator==(const Classification&) const = default;
};

struct Record {
  Kind kind = Kind::kFlag;
  Subject subject;
  Source source;
  Classification classification;
  nlohmann::json body = nlohmann::json::object();  // validated per kind; see docs/record-model.md
  bool operator==(const Record&) const = default;
};

// Strictly validates a canonical record given as JSON. Every problem found is reported
// (not only the first), each with a JSON pointer under `where_prefix` (e.g. "/record").
// Unknown fields are problems. Returns kInvalidInput with problems on failure.
Result<Record> ParseRecord(const nlohmann::json& json, std::string_view where_prefix = "");

// Checks a record built in code (an adapter's output) by exactly the rules of ParseRecord,
// without the round trip through JSON: the result is the same as
// ParseRecord(ToJson(record), where_prefix) — on success the record normalised the same way
// (postcode, body location_postcode, absent nullable body fields as null, schedule12a in
// order), on failure the same problems at the same pointers.
Result<Record> CheckRecord(Record record, std::string_view where_prefix = "");

// The record as canonical JSON (the inverse of ParseRecord; absent optionals are omitted).
nlohmann::json ToJson(const Record& record);

// Canonical bytes of a JSON value: object keys sorted, no insignificant whitespace, UTF-8,
// integers without exponent. Used for hashing (idempotency, audit entries, signatures).
std::string CanonicalJson(const nlohmann::json& json);

// True when `digits` is 10 ASCII digits whose modulus-11 check digit is right.
bool IsValidNhsNumber(std::string_view digits);

// Field-level checks shared with adapters, policy and the store (the rules of
// docs/record-model.md).
// A calendar date "YYYY-MM-DD" (year 0001..9999, leap years honoured).
bool IsValidDate(std::string_view text);
// An RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z" with a valid date and time.
bool IsValidDateTime(std::string_view text);
// Orders dates and UTC date-times by the time they denote (a date sorts as its midnight):
// negative, zero or positive. Text that is neither falls back to byte order.
int CompareDates(std::string_view a, std::string_view b);
// An agency, area or force id: 1..64 characters of a-z, 0-9 and '-'.
bool IsSlug(std::string_view text);
// A UK postcode in upper case with one space ("bd39ab" -> "BD3 9AB"), or nullopt when the
// text does not have a postcode's shape.
std::optional<std::string> NormalisePostcode(std::string_view text);

// Subject references: "nhs:<10 digits>", "csc:<area>:<id>", "police:<force>:<id>".
struct SubjectRef {
  enum class Type { kNhs, kCsc, kPolice };
  Type type = Type::kNhs;
  std::string system;            // "nhs", "csc:bradford", "police:wyp"
  std::string value;             // "9434765919", "BRA-000123"
  std::string ToString() const;  // the reference text
  bool operator==(const SubjectRef&) const = default;
};
// Errors: kBadRequest with a detail naming what is wrong (callers that read the reference
// from a body may report it as a problem instead).
Result<SubjectRef> ParseSubjectRef(std::string_view text);
// Every reference the subject carries: the NHS number first (if any), then local ids.
std::vector<SubjectRef> RefsOf(const Subject& subject);
// The reference audit entries and indexes use for this subject: NHS number if present,
// else the first local id. Never a name.
std::string PrimaryRef(const Subject& subject);

}  // namespace safegate::record
