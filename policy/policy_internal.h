// The compiled form of a policy, shared by the loader (policy_loader.cc, which builds and
// validates it) and the engine (policy.cc, which decides with it). Not part of the public
// interface: include policy/policy.h instead.
//
// Every enumerated match dimension is a bit set, so matching one rule is a handful of AND
// operations; agency and area names are interned to small integers at load time. Rules are
// indexed by (purpose, recipient role), so a decision looks only at the rules that could
// apply to its purpose and recipient.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/policy.h"

namespace safegate::policy {

inline constexpr int kKindCount = 6;  // record::Kind values
inline constexpr int kAgeBandCount = 3;
inline constexpr uint16_t kAllBits = 0xffff;

// Bits of the Schedule 12A dimension: bit 0 "no marks", bit p for paragraph p (1..7), bit 8
// for a paragraph number outside 1..7 (treated as marked).
inline constexpr uint16_t kSched12aNone = 1u << 0;
inline constexpr uint16_t kSched12aOther = 1u << 8;
inline constexpr uint16_t kSched12aAnyMark = 0x1fe;  // paragraphs 1..7 and "other"

// Two-valued dimensions (special_category, criminal_offence, same_area): bit 0 false, bit 1
// true. Handling: bit 0 "P", bit 1 "C" (any other code is treated as "C").
inline constexpr uint16_t kFalseBit = 1u << 0;
inline constexpr uint16_t kTrueBit = 1u << 1;

// Builtin guard ids (they appear in Decision::rules_fired).
inline constexpr std::string_view kBuiltinDefaultDeny = "builtin.default-deny";
inline constexpr std::string_view kBuiltinArt9 = "builtin.R1-special-category-condition";
inline constexpr std::string_view kBuiltinArt10 = "builtin.R1-criminal-offence-condition";
inline constexpr std::string_view kBuiltinOverride = "builtin.R2-safeguarding-override";
inline constexpr std::string_view kBuiltinConsent = "builtin.R3-consent";
// How a reason code names the governing rule of a permit that a guard blocked.
inline constexpr std::string_view kOtherwisePermittedBy = "otherwise permitted by ";
inline constexpr std::string_view kBuiltinSched12a = "builtin.R6-schedule12a-statistics";

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using NameTable = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct CompiledRule {
  std::string id;
  bool deny = false;
  std::string reason;
  std::string reason_text;  // "id: reason", ready for Decision::reasons
  int line = 0;
  int specificity = 0;

  // Match. A dimension not named in the file has every bit set.
  uint16_t purposes = kAllBits;
  uint16_t source_roles = kAllBits;
  uint16_t recipient_roles = kAllBits;
  uint16_t kinds = kAllBits;
  uint16_t age_bands = kAllBits;
  uint16_t handling = kAllBits;
  uint16_t special = kAllBits;
  uint16_t criminal = kAllBits;
  uint16_t same_area = kAllBits;
  uint16_t schedule12a = kAllBits;
  // Interned names; empty means any.
  std::vector<int32_t> source_agencies, source_areas, recipient_agencies, recipient_areas;

  // Terms of a permit rule.
  std::string lawful_basis;
  std::string special_condition;   // Art 9 condition; empty: none named
  std::string criminal_condition;  // Art 10 / DPA 2018 Sch 1 condition; empty: none named
  bool consent_required = false;
  bool override_allowed = false;
  bool silent_read = false;
  bool has_allow_list = false;
  std::string allow_list_name;            // when named from [allow_lists]
  std::vector<std::string> allow_fields;  // sorted, unique
  int retention_days = 0;                 // 0: the policy's retention for the kind
  // The lawful basis text for each combination: index special*2 + criminal.
  std::array<std::string, 4> basis_text;
};

struct Policy::Data {
  std::string text;  // the file's bytes
  std::string name;
  std::string description;
  std::string source_name;
  std::string version;
  std::vector<CompiledRule> rules;     // file order
  std::vector<RuleSummary> summaries;  // the rules, then the builtins
  // Rule indexes (file order) per purpose * kRoleCount + recipient role.
  std::array<std::vector<uint16_t>, kPurposeCount * kRoleCount> buckets;
  NameTable agencies;  // every agency a rule names
  NameTable areas;     // every area a rule names
  bool uses_agencies = false;
  bool uses_areas = false;
  std::array<int, kKindCount> retention{};
};

// Wraps compiled data as a Policy (the constructor is private to keep Policies immutable).
std::shared_ptr<const Policy> MakePolicy(std::unique_ptr<const Policy::Data> data);

// The builtin guards, as RuleSummary entries, for Data::summaries.
std::vector<RuleSummary> BuiltinSummaries();

}  // namespace safegate::policy
