// The policy commands of safegatectl, as a library so that safegatectl only has to forward
// `safegatectl policy ARGS...` here, and tests can run them in-process:
//
//   check FILE                                 validate a policy file (exit 0 ok, 1 refused)
//   explain [--policy FILE] --case CASE.json [--json]
//                                              decide one case and show every rule that fired
//   test DIR [--policy FILE] [--verbose]       run the table-driven cases DIR/*.toml
//
// Exit codes: 0 success, 1 the policy or a case failed, 2 usage error or unreadable input.
//
// Case input (CASE.json for explain, [case.input] tables in test files):
//   {"purpose": "safeguarding",
//    "source":    {"agency": "wyp", "role": "police", "area": "bradford"},
//    "recipient": {"agency": "bradford-csc", "role": "csc", "area": "bradford"},
//    "record": {...a canonical record...},        (or "record_file": "path/to/record.json")
//    "kind": "flag", "classification": {...}, "birth_date": "2012-05-01",
//                                                 (taken from the record when it is given)
//    "now": "2024-06-01T12:00:00Z",               (explain: the clock when absent)
//    "consent": "none" | "given" | "refused" | "withdrawn",
//    "override": {"basis": "...", "reason": "...", "authorised_by": "..."}}
// docs/policy.md describes the test file format and its expectations.
//
// Thread-safety: the functions use no shared state; each call reads files and clock only as
// its arguments ask.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/policy.h"
#include "record/status.h"

namespace safegate::policy {

// Entry point for `safegatectl policy ...`; `args` excludes "policy" itself.
// `default_policy` (e.g. the policy file named by the gateway's configuration) is used by
// `explain` when no --policy is given; without either, explain is a usage error.
int PolicyCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const std::optional<std::string>& default_policy = std::nullopt);

struct PolicyCase {
  DecisionInput input;
  std::optional<nlohmann::json> record;  // when given, redaction is shown and checked
};

// Parses a case input. Relative "record_file" paths resolve against `base_dir`. When "now"
// is absent, `default_now` is used; with no default it is a problem. Problems name JSON
// pointers under `where`.
Result<PolicyCase> ParseCaseInput(const nlohmann::json& json, const std::string& where,
                                  const std::string& base_dir,
                                  std::optional<std::chrono::system_clock::time_point> default_now);

struct CaseResult {
  std::string name;
  int line = 0;  // of the [[case]] in its file
  bool passed = false;
  std::vector<std::string> failures;  // what differed from the expectation
  Decision decision;
  std::vector<std::string> withheld;
};

struct CaseFileResult {
  std::string file;
  std::string policy_path;  // the policy the cases ran against
  std::string policy_version;
  std::vector<CaseResult> cases;
};

// One [[case]] of a case file, read and parsed but not run.
struct CaseSpec {
  std::string name;
  int line = 0;             // of the [[case]] in its file
  PolicyCase c;             // its input, the file's [defaults] merged under it
  nlohmann::json expect;    // its [case.expect] table
};

struct CaseFileSpec {
  std::string file;
  std::string policy_path;  // the file's `policy = "..."` (resolved), or the override
  std::vector<CaseSpec> cases;
};

// Reads one case file without running it (for `policy test` and for tests that drive the
// cases through a gateway). Errors as RunCaseFile's, bar the policy's.
Result<CaseFileSpec> ReadCaseFile(const std::string& path,
                                  const std::optional<std::string>& policy_path);

// Runs one case file. `policy_path` overrides the file's own `policy = "..."`. Errors in the
// file itself (bad TOML, unknown keys, unreadable policy) are a Status with problems.
Result<CaseFileResult> RunCaseFile(const std::string& path,
                                   const std::optional<std::string>& policy_path);

}  // namespace safegate::policy
