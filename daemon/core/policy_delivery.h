// The policy engine (policy/) behind the store's DeliveryPolicy seam: every delivery of a
// push is decided by policy::Policy::Decide with the caller and recipient as the registry
// knows them, the subject's age band on the day, the consent state the store looked up and
// the safeguarding override the push carries. docs/policy.md ("In the gateway") describes
// what a delivery and its audit entry then carry.
//
// Ownership and thread-safety: PolicyDeliveryPolicy holds a policy::PolicyHolder; decisions
// take one snapshot per push and are pure; Reload() swaps the holder's policy atomically, so
// concurrent pushes see the old policy or the new one, never a mixture.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "daemon/core/gateway.h"
#include "policy/policy.h"
#include "policy/policy_holder.h"
#include "record/status.h"

namespace safegate::core {

// The lines a delivery's answer ends with, after the policy's sentences: "rules fired: ...",
// "lawful basis: ..." when the decision has one, and "policy version: ...". The one place they
// are composed: DecideInContext answers with them, and a replay spells them again from a
// stored citation (CitedReasons, policy_texts.h).
void AppendDecisionLines(std::vector<std::string>& reasons,
                         const std::vector<std::string>& rules_fired,
                         std::string_view lawful_basis, std::string_view policy_version);

// config::Role and policy::Role name the same roles.
policy::Role PolicyRole(config::Role role);

// The push's "override" member: an object with exactly basis, reason and authorised_by, each
// a non-empty string of at most 2000 characters. kInvalidInput with one problem per fault,
// under /override (the problems never echo what was sent).
Result<policy::Override> ParseOverride(const nlohmann::json& value);

class PolicyDeliveryPolicy final : public DeliveryPolicy {
 public:
  // REQUIRES: holder is not null.
  explicit PolicyDeliveryPolicy(std::shared_ptr<policy::PolicyHolder> holder);

  // Without the store's context: no consent recorded, the system clock.
  DeliveryDecision Decide(const Caller& caller, const PushRequest& request,
                          const config::Agency& recipient) const override;
  // kInvalidInput: an unknown purpose (the policy's list), a malformed override.
  Status CheckPush(const PushRequest& request) const override;
  bool UsesConsent() const override { return true; }
  std::shared_ptr<const policy::Policy> Snapshot() const override;
  DeliveryDecision DecideInContext(const Caller& caller, const PushRequest& request,
                                   const config::Agency& recipient,
                                   const DecisionContext& context) const override;
  int RetentionDays(record::Kind kind) const override;
  Result<std::string> Reload() const override;
  std::string Version() const override;
  std::string PolicyFile() const override;

 private:
  std::shared_ptr<policy::PolicyHolder> holder_;
};

}  // namespace safegate::core
