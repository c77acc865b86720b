// The policy engine behind the DeliveryPolicy seam (policy_delivery.h).
#include "daemon/core/policy_delivery.h"

#include <chrono>
#include <string_view>
#include <utility>
#include <vector>

#include "record/record.h"
#include "record/json_pointer.h"

namespace safegate {

Result<std::shared_ptr<const DeliveryPolicy>> MakePolicyDeliveryPolicy(const std::string& path) {
  auto loaded = policy::LoadPolicy(path);
  if (!loaded.ok()) return loaded.status();
  auto holder = std::make_shared<policy::PolicyHolder>(std::move(*loaded), path);
  return std::shared_ptr<const DeliveryPolicy>(
      std::make_shared<const core::PolicyDeliveryPolicy>(std::move(holder)));
}

namespace core {
namespace {

using nlohmann::json;

constexpr size_t kMaxOverrideText = 2000;

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

bool IsBlank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

std::string PurposeList() {
  std::vector<std::string> names;
  for (policy::Purpose p : policy::AllPurposes()) names.emplace_back(policy::PurposeName(p));
  return Join(names, ", ");
}

}  // namespace

policy::Role PolicyRole(config::Role role) {
  switch (role) {
    case config::Role::kPolice:
      return policy::Role::kPolice;
    case config::Role::kHealth:
      return policy::Role::kHealth;
    case config::Role::kCsc:
      return policy::Role::kCsc;
    case config::Role::kAudit:
      return policy::Role::kAudit;
    case config::Role::kCommittee:
      return policy::Role::kCommittee;
    case config::Role::kGateway:
      return policy::Role::kGateway;
  }
  return policy::Role::kGateway;  // not reached: every role is named above
}

Result<policy::Override> ParseOverride(const json& value) {
  if (!value.is_object()) {
    return Status::Invalid("override must be an object {basis, reason, authorised_by}",
                           {{"/override", "must be an object {basis, reason, authorised_by}"}});
  }
  std::vector<Problem> problems;
  for (const auto& [key, member] : value.items()) {
    (void)member;
    if (key != "basis" && key != "reason" && key != "authorised_by") {
      // The member's name is the caller's text: not echoed (R7).
      problems.push_back(
          {"/override", "has a member other than basis, reason and authorised_by"});
      break;
    }
  }
  policy::Override out;
  auto take = [&](const char* name, std::string& into) {
    const std::string where = std::string("/override/") + name;
    auto it = value.find(name);
    if (it == value.end()) {
      problems.push_back({where, "is required"});
    } else if (!it->is_string()) {
      problems.push_back({where, "must be a string"});
    } else {
      into = it->get<std::string>();
      if (IsBlank(into)) {
        problems.push_back({where, "must not be empty"});
      } else if (into.size() > kMaxOverrideText) {
        problems.push_back({where, "is longer than 2000 characters"});
      }
    }
  };
  take("basis", out.basis);
  take("reason", out.reason);
  take("authorised_by", out.authorised_by);
  if (!problems.empty()) {
    std::string detail = "the safeguarding override is malformed: " + problems[0].where + " " +
                         problems[0].what;
    return Status::Invalid(std::move(detail), std::move(problems));
  }
  return out;
}

PolicyDeliveryPolicy::PolicyDeliveryPolicy(std::shared_ptr<policy::PolicyHolder> holder)
    : holder_(std::move(holder)) {}

DeliveryDecision PolicyDeliveryPolicy::Decide(const Caller& caller, const PushRequest& request,
                                              const config::Agency& recipient) const {
  DecisionContext context;
  context.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return DecideInContext(caller, request, recipient, context);
}

Status PolicyDeliveryPolicy::CheckPush(const PushRequest& request) const {
  std::vector<Problem> problems;
  if (!policy::ParsePurpose(request.purpose)) {
    problems.push_back({"/purpose", "is not a purpose the sharing policy knows (" +
                                        PurposeList() + ")"});
  }
  if (request.override_request) {
    auto parsed = ParseOverride(*request.override_request);
    if (!parsed.ok()) {
      for (const Problem& p : parsed.status().problems()) problems.push_back(p);
    }
  }
  if (problems.empty()) return Status::Ok();
  return InvalidProblems(std::move(problems));
}

std::shared_ptr<const policy::Policy> PolicyDeliveryPolicy::Snapshot() const {
  return holder_->Current();
}

DeliveryDecision PolicyDeliveryPolicy::DecideInContext(const Caller& caller,
                                                       const PushRequest& request,
                                                       const config::Agency& recipient,
                                                       const DecisionContext& context) const {
  const std::shared_ptr<const policy::Policy> current =
      context.policy ? context.policy : holder_->Current();
  DeliveryDecision out;
  const auto purpose = policy::ParsePurpose(request.purpose);
  if (!purpose) {  // CheckPush refuses these first; a denial, never an exception, if not
    out.decision = "deny";
    out.reasons = {"the purpose is not one the sharing policy knows",
                   "policy version: " + current->version()};
    out.audit_reasons = {"the purpose is not one the sharing policy knows"};
    out.audit_detail = {{"policy_version", current->version()}};
    return out;
  }

  policy::DecisionInput in;
  in.kind = request.record.kind;
  in.classification = request.record.classification;
  in.birth_date = request.record.subject.birth_date;
  in.now = std::chrono::system_clock::time_point(std::chrono::milliseconds(context.now_ms));
  in.source = {caller.agency, PolicyRole(caller.role), caller.area};
  in.recipient = {recipient.id, PolicyRole(recipient.role), recipient.area};
  in.purpose = *purpose;
  in.consent = policy::ParseConsentState(context.consent).value_or(policy::ConsentState::kNone);
  if (request.override_request) {
    auto parsed = ParseOverride(*request.override_request);
    if (parsed.ok()) in.safeguarding_override = std::move(*parsed);
  }

  // The decision is this function's own: its texts are moved out, not copied (each below is
  // read before it is moved).
  policy::Decision d = current->Decide(in);
  out.decision = std::string(policy::EffectName(d.effect));
  // The answer to the pushing agency spells everything out; the audit entry cites it
  // (below), and the entry's policy_version turns the citations back into the text.
  const bool has_basis = !d.lawful_basis.empty();
  out.reasons = std::move(d.reasons);
  AppendDecisionLines(out.reasons, d.rules_fired, d.lawful_basis, d.policy_version);
  out.audit_reasons = std::move(d.reason_codes);
  out.lawful_basis = std::move(d.lawful_basis);
  out.override_used = d.override_used;
  out.retention_days = d.retention_days;

  // The audit entry's detail: what was decided and on what facts, never the record's values
  // (R5, R7). The policy's own text (rule reasons, lawful basis, consent and override terms)
  // is not repeated: policy_version names the file, governing_rule the rule whose terms
  // applied, and basis which of its conditions the lawful basis took (docs/audit-log.md).
  // Member by member: the {{key, value}, ...} form builds an array per member first.
  json detail = json::object();
  detail.emplace("policy_version", std::move(d.policy_version));
  detail.emplace("rules_fired", std::move(d.rules_fired));
  detail.emplace("consent", policy::ConsentStateName(d.consent));
  detail.emplace("age_band", policy::AgeBandName(d.age_band));
  if (!d.governing_rule.empty()) detail.emplace("governing_rule", d.governing_rule);
  if (has_basis) {
    json basis = json::array({"art6"});
    if (request.record.classification.special_category) basis.push_back("art9");
    if (request.record.classification.criminal_offence) basis.push_back("art10");
    detail["basis"] = std::move(basis);
  }
  if (d.override_used) detail["override_used"] = true;
  if (d.retention_days > 0) detail["retention_days"] = d.retention_days;
  if (d.effect == policy::Effect::kRedact) {
    policy::Redaction redaction = policy::Redact(
        context.record_json ? *context.record_json : record::ToJson(request.record), d);
    detail["withheld"] = std::move(redaction.withheld);
    out.redacted_record = std::move(redaction.record);
  }
  out.audit_detail = std::move(detail);

  // An override the governing rule does not allow is refused outright (R2): sharing without
  // consent is lawful only where the rule says it may be, and the caller must know that its
  // recorded reason was not accepted.
  if (in.safeguarding_override && !d.governing_rule.empty() && !d.override_allowed) {
    out.override_refused = "rule " + d.governing_rule +
                           " does not allow the safeguarding override (DPA 2018 Sch 1 para 18) "
                           "for sharing with " +
                           recipient.id + " for " + std::string(policy::PurposeName(*purpose)) +
                           "; it is available only for children and for safeguarding, "
                           "s47_enquiry and missing_child where the rule allows it";
  }
  return out;
}

void AppendDecisionLines(std::vector<std::string>& reasons,
                         const std::vector<std::string>& rules_fired,
                         std::string_view lawful_basis, std::string_view policy_version) {
  reasons.push_back("rules fired: " + Join(rules_fired, ", "));
  if (!lawful_basis.empty()) reasons.push_back("lawful basis: " + std::string(lawful_basis));
  reasons.push_back("policy version: " + std::string(policy_version));
}

int PolicyDeliveryPolicy::RetentionDays(record::Kind kind) const {
  return holder_->Current()->RetentionDays(kind);
}

Result<std::string> PolicyDeliveryPolicy::Reload() const {
  auto reloaded = holder_->Reload();
  if (!reloaded.ok()) return reloaded.status();
  return (*reloaded)->version();
}

std::string PolicyDeliveryPolicy::Version() const { return holder_->Current()->version(); }

std::string PolicyDeliveryPolicy::PolicyFile() const { return holder_->path(); }

}  // namespace core
}  // namespace safegate
