// The sharing policy: rules loaded from TOML that decide, for one record, one recipient and
// one purpose, whether the record may be disclosed (permit), disclosed with only an allowed
// set of fields (redact), or not at all (deny), and on which lawful basis.
//
// docs/policy.md describes the rule language, how rules combine, and the shipped policy
// (policy/default.toml) in plain words.
//
// How a decision is made (the short form; docs/policy.md has the long one):
//   - default deny: with no permitting rule, the answer is deny;
//   - deny overrides permit: any deny rule that matches wins, whatever its specificity;
//   - among permitting rules that match, the most specific one (the one naming the most
//     conditions) governs: its lawful basis, consent terms, field allow-list and retention
//     apply. Two permitting rules that could match the same input at the same specificity
//     with different terms are refused when the policy is loaded, so the choice is never
//     arbitrary;
//   - statutory guards that no local policy can relax are applied by the engine itself and
//     named "builtin.*" in the decision (Art 9/10 conditions, Schedule 12A rows for
//     statistics, consent refusal without an allowed safeguarding override).
//
// Ownership and thread-safety: a Policy is immutable once built and is shared as
// std::shared_ptr<const Policy>; Decide() may be called from any number of threads at once
// with no locking. Decide() does no I/O. Reloading (SIGHUP) builds a new Policy and swaps
// the pointer (see policy_holder.h); decisions already under way keep the old one.
//
// Errors: loading returns Result; a file with any problem is refused as a whole with
// kInvalidInput and one Problem per fault, `where` = "file:line", `what` = the reason. A
// denial is a normal Decision, never an error.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "record/record.h"
#include "record/status.h"

namespace safegate::policy {

// Why a record is being shared. The list is closed: a policy naming another purpose is
// refused.
enum class Purpose : uint8_t {
  kSafeguarding,     // protecting a child from harm (Children Act 2004 s11)
  kS47Enquiry,       // a section 47 child protection enquiry (Children Act 1989)
  kUnscheduledCare,  // A&E, urgent care, out-of-hours: the CP-IS use
  kScheduledCare,    // planned appointments (R8's silent read)
  kCaseTransfer,     // a child's case moving to another area
  kMissingChild,     // a child reported missing
  kStatistics,       // aggregate reporting (rows never identify; Sch 12A never as rows)
  kSubjectAccess,    // answering a subject access request (UK GDPR Art 15)
};
inline constexpr int kPurposeCount = 8;
std::string_view PurposeName(Purpose purpose);  // "safeguarding", "s47_enquiry", ...
std::optional<Purpose> ParsePurpose(std::string_view name);
const std::vector<Purpose>& AllPurposes();
// The purposes for which the safeguarding override (DPA 2018 Sch 1 para 18) may stand in
// for consent: safeguarding, s47_enquiry, missing_child.
bool IsSafeguardingPurpose(Purpose purpose);

// Agency roles, as in the agency registry. Kept here (not config::Role) so the policy
// library depends on the record model only; the names are the same.
enum class Role : uint8_t { kPolice, kHealth, kCsc, kAudit, kCommittee, kGateway };
inline constexpr int kRoleCount = 6;
std::string_view RoleName(Role role);  // "police", "health", "csc", "audit", "committee", "gateway"
std::optional<Role> ParseRole(std::string_view name);
const std::vector<Role>& AllRoles();

// The subject's age band on the day of the decision: child under 18, adult 18 or over,
// unknown without a usable birth date (absent, malformed, or in the future).
enum class AgeBand : uint8_t { kChild, kAdult, kUnknown };
std::string_view AgeBandName(AgeBand band);  // "child", "adult", "unknown"
std::optional<AgeBand> ParseAgeBand(std::string_view name);
// `birth_date` is "YYYY-MM-DD". A person born on 29 February turns 18 on 1 March in a
// year that is not a leap year. Pure; does not read the clock.
AgeBand AgeBandOf(const std::optional<std::string>& birth_date,
                  std::chrono::system_clock::time_point now);

// The latest consent statement for the subject and purpose (see consent.h).
enum class ConsentState : uint8_t { kNone, kGiven, kRefused, kWithdrawn };
std::string_view ConsentStateName(ConsentState state);  // "none", "given", "refused", "withdrawn"
std::optional<ConsentState> ParseConsentState(std::string_view name);

enum class Effect : uint8_t { kPermit, kRedact, kDeny };
std::string_view EffectName(Effect effect);  // "permit", "redact", "deny"

// One end of a disclosure, as the registry knows it (the caller's identity comes from its
// certificate, never from the request body).
struct Party {
  std::string agency;  // registry id, e.g. "wyp"
  Role role = Role::kCsc;
  std::string area;  // e.g. "bradford"
};

// The safeguarding override (R2): the recorded reason why consent was not sought or is set
// aside, who authorised it, and the basis relied on. All three must be non-empty.
struct Override {
  std::string basis;          // e.g. "DPA 2018 Sch 1 para 18"
  std::string reason;         // free text; never copied into the decision (R7)
  std::string authorised_by;  // the authorising officer; never copied into the decision
};

// Everything a decision depends on. Nothing else is consulted: Decide is a pure function of
// this and the policy.
struct DecisionInput {
  record::Kind kind = record::Kind::kFlag;
  record::Classification classification;
  std::optional<std::string> birth_date;        // subject's, "YYYY-MM-DD"
  std::chrono::system_clock::time_point now{};  // for the age band
  Party source;
  Party recipient;
  Purpose purpose = Purpose::kSafeguarding;
  ConsentState consent = ConsentState::kNone;  // LatestConsent() for subject and purpose
  std::optional<Override> safeguarding_override;
};

// The answer, with everything the audit entry needs (R5). Holds no personal data: reasons
// are built from the policy's text and enum names only, never from the record or the
// override's free text (R7).
struct Decision {
  Effect effect = Effect::kDeny;
  // The Art 6 basis, followed by the Art 9 condition when the record is special category
  // and the Art 10 / Sch 1 condition when it is criminal offence data; "; " between them.
  // Empty on deny.
  std::string lawful_basis;
  bool consent_required = false;  // the governing rule makes consent the condition
  bool override_allowed = false;  // the governing rule lets the safeguarding override stand in
  bool override_used = false;     // the override was needed and accepted
  bool notify_owner = false;      // R8: tell the owning agency it was read (false on deny)
  AgeBand age_band = AgeBand::kUnknown;
  ConsentState consent = ConsentState::kNone;  // as given in the input, for the audit entry
  std::string governing_rule;                  // the permit rule whose terms apply; may be empty
  std::vector<std::string> rules_fired;   // every rule that matched, in policy order, then builtins
  std::vector<std::string> reasons;       // for a person
  // The same reasons as codes, one per reason, for the audit entry (which cites the policy
  // version, so the policy's own text need not be repeated in every entry): a rule's reason
  // is its rule id; "otherwise permitted by <rule id>" for the governing rule of a blocked
  // permit; a builtin guard's sentence as it stands (it is built from enum names, and says
  // what no rule text does). Policy::ExplainReason turns a code back into its sentence.
  std::vector<std::string> reason_codes;
  std::vector<std::string> allow_fields;  // JSON pointers; set only when effect is redact
  int retention_days = 0;                 // how long the recipient's copy is kept (0 on deny)
  std::string policy_version;             // hex SHA-256 of the policy file's bytes

  nlohmann::json ToJson() const;
};

// A rule as the policy file states it, for `explain` and for audit officers.
struct RuleSummary {
  std::string id;
  Effect effect = Effect::kDeny;  // kPermit or kDeny (a permit with an allow-list redacts)
  std::string reason;
  int line = 0;         // where the rule starts in the file
  int specificity = 0;  // how many conditions it names
};

class Policy {
 public:
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // Pure: no I/O, no locks, no clock. Safe to call concurrently.
  Decision Decide(const DecisionInput& input) const;

  const std::string& name() const;         // [policy] name
  const std::string& source_name() const;  // the file name given when loading
  const std::string& version() const;      // hex SHA-256 of the file's bytes
  const std::vector<RuleSummary>& rules() const;
  // The rule with this id, or null. Also answers for "builtin.*" ids.
  const RuleSummary* FindRule(std::string_view id) const;
  // Retention for a kind when the governing rule does not set its own.
  int RetentionDays(record::Kind kind) const;
  // The file's bytes, as loaded (their SHA-256 is version()).
  const std::string& text() const;
  // The sentence for a reason code of Decision::reason_codes: "<id>: <reason>" for a rule id,
  // "otherwise permitted by <id>: <reason>" for that form; any other code as it stands.
  std::string ExplainReason(std::string_view code) const;
  // The lawful basis a permit under rule `rule_id` gave a record that is (or is not) special
  // category and criminal offence data: Decision::lawful_basis as the decision composed it.
  // nullopt when the policy has no permit rule of that id.
  std::optional<std::string> LawfulBasisOf(std::string_view rule_id, bool special_category,
                                           bool criminal_offence) const;

  struct Data;  // the compiled form; defined in policy_internal.h

 private:
  explicit Policy(std::unique_ptr<const Data> data);
  friend std::shared_ptr<const Policy> MakePolicy(std::unique_ptr<const Data> data);
  std::unique_ptr<const Data> data_;
};

// Reads and validates a policy file. The problems name "path:line".
Result<std::shared_ptr<const Policy>> LoadPolicy(const std::string& path);
// Validates policy text; `name` stands for the file in problems and source_name().
Result<std::shared_ptr<const Policy>> ParsePolicy(std::string_view text, std::string_view name);

// What may be handed to the recipient. `withheld` lists the JSON pointers (RFC 6901) of the
// members left out, never their values, depth first in key order.
struct Redaction {
  nlohmann::json record;
  std::vector<std::string> withheld;
};
// permit: the record unchanged. redact: only the members under the decision's allow-list,
// plus the envelope that always travels ("/kind", "/source", "/classification", so the
// recipient knows what it holds and how to handle it). deny: null and nothing withheld
// (nothing is delivered; the audit entry records the denial itself).
// A pointer names an object member; arrays travel whole or not at all.
Redaction Redact(const nlohmann::json& record_json, const Decision& decision);

// RFC 3339 UTC or with an offset ("2024-06-01T12:00:00Z", "2024-06-01T13:00:00.5+01:00"),
// or a bare date "2024-06-01" (midnight UTC). nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> ParseTimestamp(std::string_view text);

}  // namespace safegate::policy
