// The sharing policy's text kept in the store once per version (table `policy_texts`), and
// what turns a delivery audit entry's citations back into words for a reader.
//
// A delivery entry records its reasons as codes (rule ids; a builtin guard's own sentence)
// and its lawful basis as the governing rule plus which of its conditions applied, under the
// policy_version (hex SHA-256 of the policy file) it was decided with; docs/audit-log.md,
// "Delivery entries". The text of that version is stored here when the gateway starts with
// it, when it is reloaded, and with the first push decided with it if still missing, so the
// audit query and the subject access report can show the sentences even after the policy
// file has changed. The stored text is checked against the version it is stored under before
// it is used, so an altered row is never shown as the policy's words.
//
// Thread-safety: StorePolicyText and PolicyExplainer use the connection they are given, on
// the thread that owns it (the writer). A PolicyExplainer is for one query.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/gateway.h"
#include "daemon/core/sqlite.h"
#include "policy/policy.h"
#include "record/status.h"

namespace safegate::core {

// Stores `policy`'s text under its version unless that version is already stored.
// `file` names where it was loaded from (for a reader; not evidence). Errors: the store's.
Status StorePolicyText(Db& db, const policy::Policy& policy, const std::string& file,
                       int64_t now_ms);

class PolicyExplainer {
 public:
  // `current` (may be null) is the policy in force: entries citing its version need no read.
  PolicyExplainer(Db& db, std::shared_ptr<const policy::Policy> current);

  // For a delivery entry (delivery_permitted, delivery_redacted, delivery_denied) that cites
  // a policy_version, sets e.explained to {"reasons": [sentences], "lawful_basis": text or
  // null, "policy_text": "stored" | "not stored"}; leaves other entries alone. Entries
  // written before reasons were coded carry their sentences already and are shown as they
  // are. Never fails: a version whose text is not stored (or does not match its hash) leaves
  // the codes as they are, and says so.
  void Explain(AuditEntry& e);

  // The policy of `version`: the current one, or the stored text of that version parsed
  // (checked against its hash). Null when no matching text is stored. Owned by this object.
  const policy::Policy* Find(const std::string& version);

 private:

  Db& db_;
  std::shared_ptr<const policy::Policy> current_;
  std::map<std::string, std::shared_ptr<const policy::Policy>> loaded_;  // null: not stored
};

// ---- The stored push answer (records.response_json) ------------------------------------
//
// A replay of a push gets its first answer again, so the answer is stored with the record.
// A delivery the sharing policy decided is stored as its audit entry records it: the reason
// codes, the rules fired and the lawful-basis citation under the policy version
// ({"recipient", "decision", "message_id", "codes", "rules_fired", "policy_version",
// "governing_rule"?, "basis"?}); a replay spells the sentences out again from that version's
// text. The prose (about 1 KB per delivery) would otherwise make every record row span
// several pages.

// The stored form of `delivery` as decided by `decision` under `policy`, or nullopt when the
// citation would not give back exactly the reasons the caller was answered (the placeholder
// policy, a builtin guard's answer): such a delivery is stored with its reasons.
std::optional<nlohmann::json> CiteDelivery(const Delivery& delivery,
                                           const DeliveryDecision& decision,
                                           const policy::Policy* policy);

// The reasons of a cited delivery (CiteDelivery's form), from the policy version it cites.
// When that version's text is not stored, the codes as they stand and a line saying so.
// kInternal when `cited` is malformed.
Result<std::vector<std::string>> CitedReasons(const nlohmann::json& cited,
                                              PolicyExplainer& policies);

}  // namespace safegate::core
