// BatchBuilder: where an adapter's records go as they are made. Every record is checked with
// record::CheckRecord (the canonical validator's rules, applied to the record as built: an
// adapter can never hand out a record the rest of safegate would refuse, and the record is
// not turned into JSON and read back to find out), and idempotency keys (agency, record_id,
// version) must be unique within one export. Problems and warnings carry the input position given with the
// record.
//
// Also the one place that shapes the flag body, which four formats produce.
//
// Thread-safety: none; one builder per Parse() call.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.h"
#include "adapters/common/problems.h"

namespace safegate::adapters {

class BatchBuilder {
 public:
  explicit BatchBuilder(std::string_view format) : format_(format) {}

  ProblemList& problems() { return problems_; }
  void Problem(std::string where, std::string what) {
    problems_.Add(std::move(where), std::move(what));
  }
  void Warn(std::string where, std::string what);

  // Input positions of record fields: a record pointer ("/subject/given_name", "/body") and
  // where that field came from in the input. A problem CheckRecord finds under a pointer is
  // reported at the longest matching one.
  using FieldPositions = std::vector<std::pair<std::string, std::string>>;

  // Validates `r` and keeps it. `where` is the input position of the thing it came from.
  void Add(record::Record r, const std::string& where, const FieldPositions& fields = {});
  // The same, with the field positions made by `make_fields()` only if the record turns out
  // not to be valid: a valid record (nearly every one) costs no position strings.
  template <typename MakeFields>
  void AddLazy(record::Record&& r, const std::string& where, MakeFields&& make_fields) {
    if (auto failure = Keep(std::move(r), where)) Report(*failure, where, make_fields());
  }
  // Room for `records` more records, when the caller knows about how many will come: the
  // batch then never moves its records to grow, nor rehashes its keys.
  void Reserve(size_t records) {
    batch_.records.reserve(batch_.records.size() + records);
    keys_.reserve(keys_.size() + records);
  }

  // The batch, or Status::Invalid with every problem. Consumes the builder.
  Result<ParsedBatch> Finish();

 private:
  // Checks the idempotency key (a repeat is reported here) and the record; keeps the record
  // when both are fine. Returns the record's problems when it is not valid.
  std::optional<Status> Keep(record::Record&& r, const std::string& where);
  // Reports a record's problems at the input positions of its fields.
  void Report(const Status& failure, const std::string& where, const FieldPositions& fields);

  std::string format_;
  ProblemList problems_;
  ProblemList warnings_;
  ParsedBatch batch_;
  std::unordered_map<std::string, std::string> keys_;  // idempotency key -> where first seen
};

// The canonical flag body (docs/record-model.md). Absent level, end and review_by are JSON
// null, as the record model shows them; `contact` and `note` are left out when unknown.
struct FlagFields {
  std::string type;                  // cse_risk, missing, cp_plan, ...
  std::optional<std::string> level;  // low | medium | high
  std::string status;                // active | inactive | entered_in_error
  std::string start;                 // YYYY-MM-DD
  std::optional<std::string> end;
  std::optional<std::string> review_by;
  std::string owner_agency;
  std::optional<std::string> office_hours;
  std::optional<std::string> out_of_hours;
  std::optional<std::string> note;
};
// Writes it into `body` (a new record's empty body: building it there, rather than returning
// one to assign, saves the record's own empty object). Anything already in `body` is replaced.
void FlagBody(FlagFields f, nlohmann::json& body);

// Sets member `key` of the object `obj`. Record bodies are built member by member: the
// initializer-list form ({{"key", value}, ...}) first builds a [key, value] array for every
// member, which costs more than all the rest of an adapter's work on a record.
// Members put in key order go in without a search.
inline void Put(nlohmann::json& obj, std::string_view key, nlohmann::json value) {
  auto& members = obj.get_ref<nlohmann::json::object_t&>();
  if (members.empty() || std::string_view(members.rbegin()->first) < key) {
    // After every member so far: it goes at the end (one comparison, where insert_or_assign
    // with a hint makes four).
    members.emplace_hint(members.end(), std::piecewise_construct, std::forward_as_tuple(key),
                         std::forward_as_tuple(std::move(value)));
    return;
  }
  members.insert_or_assign(std::string(key), std::move(value));
}

// An NHS number as written in an export ("9434765919" or "943 476 5919") as 10 digits in
// `*digits`. Returns "" if valid, else what is wrong (for a problem).
std::string CheckNhsNumber(std::string_view text, std::string* digits);

// A telephone number as exports write them: digits, spaces, "+", "-", "(", ")"; 6 to 15
// digits. Returns "" if acceptable, else what is wrong.
std::string CheckPhone(std::string_view text);

// JSON null for nullopt, the string otherwise.
nlohmann::json OrNull(const std::optional<std::string>& v);

}  // namespace safegate::adapters
