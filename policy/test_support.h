// Test support for driving the table-driven policy cases (policy/tests/*.toml) through the
// gateway: the store-level test (daemon/core/policy_cases_gateway_test.cc) and the HTTP one
// (tests/policy_cases_http_test.cc) read the same files the same way, so that they cannot
// drift apart. Header-only and for tests only: it throws std::runtime_error on a case it
// cannot turn into a push.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/policy.h"
#include "policy/policy_tool.h"
#include "record/record.h"

namespace safegate::policy::testing {

// The case files of `policy_dir`/tests, sorted.
inline std::vector<std::string> CaseFiles(const std::string& policy_dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(policy_dir + "/tests", ec)) {
    if (e.path().extension() == ".toml") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// One [[case]] of a file: its place, its parsed input and what it expects.
struct LoadedCase {
  int n = 0;          // 1-based across the file, used to make its subject unique
  std::string where;  // "FILE:LINE NAME"
  PolicyCase c;
  nlohmann::json expect;
};

// Every case of `file` (policy::ReadCaseFile), which must run against the shipped policy;
// throws on a file that does not read (policy_test reports such files with their problems).
inline std::vector<LoadedCase> LoadCases(const std::string& file, const std::string& policy_dir) {
  auto spec = ReadCaseFile(file, std::nullopt);
  if (!spec.ok()) throw std::runtime_error(spec.status().ToString());
  if (std::filesystem::path(spec->policy_path) !=
      (std::filesystem::path(policy_dir) / "default.toml").lexically_normal()) {
    throw std::runtime_error(file + " runs against " + spec->policy_path +
                             "; the gateway runs the shipped policy");
  }
  std::vector<LoadedCase> out;
  for (CaseSpec& c : spec->cases) {
    LoadedCase lc;
    lc.n = static_cast<int>(out.size()) + 1;
    lc.where = file + ":" + std::to_string(c.line) + " " + c.name;
    lc.c = std::move(c.c);
    lc.expect = std::move(c.expect);
    out.push_back(std::move(lc));
  }
  return out;
}

// A valid NHS number in the 999 range reserved for testing, different for each `n`.
inline std::string TestNhsNumber(int n) {
  for (int candidate = n * 7;; ++candidate) {
    const std::string number = std::to_string(candidate % 1000000);
    std::string digits = "999" + std::string(6 - number.size(), '0') + number;
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (digits[i] - '0') * (10 - i);
    const int check = 11 - sum % 11;
    if (check == 10) continue;
    digits += static_cast<char>('0' + (check == 11 ? 0 : check));
    if (record::IsValidNhsNumber(digits)) return digits;
  }
}

// A body of `kind` that passes the record model's checks (docs/record-model.md), for a case
// that gives no record file of its own.
inline nlohmann::json ValidBody(record::Kind kind, const std::string& source_agency) {
  switch (kind) {
    case record::Kind::kFlag:
      return {{"type", "concern"}, {"status", "active"}, {"start", "2024-01-02"},
              {"owner_agency", source_agency}};
    case record::Kind::kOccurrence:
      return {{"occurrence_type", "concern for welfare"},
              {"occurred_at", "2024-01-02T10:00:00Z"},
              {"summary", "seen with older males at the bus station"}};
    case record::Kind::kReferral:
      return {{"referral_date", "2024-01-02"},
              {"referral_source", "police"},
              {"reason", "concern for welfare"}};
    case record::Kind::kAssessment:
      return {{"assessment_type", "single assessment"}, {"start", "2024-01-02"}};
    case record::Kind::kMissingEpisode:
      return {{"start", "2024-01-02T22:00:00Z"}, {"reported_by", "carer"}};
    case record::Kind::kPlan:
      return {{"plan_type", "cp"}, {"start", "2024-01-02"}};
  }
  return nlohmann::json::object();
}

// The record the case describes, as a push from its source: the case's record (or one built
// from its kind, classification and birth date), with its subject references made unique to
// the case (by `n`) so that consent recorded for one case does not reach another.
inline record::Record CaseRecord(const PolicyCase& c, int n) {
  record::Record r;
  if (c.record) {
    auto parsed = record::ParseRecord(*c.record);
    if (!parsed.ok()) throw std::runtime_error("case record: " + parsed.status().ToString());
    r = std::move(*parsed);
  } else {
    r.kind = c.input.kind;
    r.classification = c.input.classification;
    r.subject.birth_date = c.input.birth_date;
    r.subject.local_ids = {{"csc:bradford", "CASE"}};
    r.body = ValidBody(c.input.kind, c.input.source.agency);
  }
  if (r.subject.nhs_number || r.subject.local_ids.empty()) {
    r.subject.nhs_number = TestNhsNumber(n);
  }
  for (record::LocalId& id : r.subject.local_ids) id.value += "-" + std::to_string(n);
  // What the case gives explicitly wins over its record, as for the engine.
  r.kind = c.input.kind;
  r.classification = c.input.classification;
  r.subject.birth_date = c.input.birth_date;
  r.source.agency = c.input.source.agency;
  r.source.record_id = "CASE-" + std::to_string(n);
  r.source.version = 1;
  if (r.source.recorded_at.empty()) r.source.recorded_at = "2024-01-01T00:00:00Z";
  if (r.source.system.empty()) r.source.system = "test";
  return r;
}

// The case moved to `now`: its clock set to `now` and the subject's birth date moved so that
// the age on `now` is what it was on the case's own date, to the day (a child whose 18th
// birthday is tomorrow stays so). For a gateway that runs on the real clock.
inline void MoveCaseTo(PolicyCase& c, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  const sys_days case_day = floor<days>(c.input.now);
  const sys_days new_day = floor<days>(now);
  c.input.now = now;
  if (!c.input.birth_date) return;
  std::istringstream in(*c.input.birth_date);
  int y = 0;
  unsigned m = 0, d = 0;
  char dash1 = 0, dash2 = 0;
  in >> y >> dash1 >> m >> dash2 >> d;
  const year_month_day born{year{y}, month{m}, day{d}};
  if (!in || dash1 != '-' || dash2 != '-' || !born.ok()) return;  // the engine says "unknown"
  // The age in whole years on the case's date, the last birthday on or before it and the
  // days since then; the same on `now`.
  const year_month_day on_case{case_day};
  int age = int(on_case.year()) - int(born.year());
  auto birthday_in = [&](int in_year) {
    year_month_day b{year{in_year}, born.month(), born.day()};
    if (!b.ok()) b = year_month_day{year{in_year}, born.month(), day{28}};  // 29 February
    return sys_days{b};
  };
  if (birthday_in(int(on_case.year())) > case_day) --age;
  // Anchored on whichever birthday is nearer, the last or the next, so that the distance
  // to it is kept exactly across leap years.
  const auto since_last = case_day - birthday_in(int(born.year()) + age);
  const auto until_next = birthday_in(int(born.year()) + age + 1) - case_day;
  const bool by_next = until_next < since_last;
  const year_month_day anchor{by_next ? new_day + until_next : new_day - since_last};
  year_month_day moved{anchor.year() - years{by_next ? age + 1 : age}, anchor.month(),
                       anchor.day()};
  if (!moved.ok()) moved = year_month_day{moved.year(), moved.month(), day{28}};
  std::ostringstream out;
  out << int(moved.year()) << '-' << (unsigned(moved.month()) < 10 ? "0" : "")
      << unsigned(moved.month()) << '-' << (unsigned(moved.day()) < 10 ? "0" : "")
      << unsigned(moved.day());
  c.input.birth_date = out.str();  // CaseRecord puts it in the record too
}

inline std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// Roles the store delivers records to; pushes to the others are refused before any decision.
inline bool Receives(Role role) {
  return role == Role::kPolice || role == Role::kHealth || role == Role::kCsc;
}

}  // namespace safegate::policy::testing
