// The sharing policy in a push: the decision step's context, the audit detail of each
// delivery, retention deadlines, the safeguarding override's audit entry and notice, and the
// audit of a policy reload. policy_store.h says what each function is for.
#include <algorithm>
#include <memory>
#include <utility>

#include "daemon/core/policy_store.h"
#include "daemon/core/policy_texts.h"
#include "daemon/core/time_format.h"
#include "record/record.h"

namespace safegate {

using nlohmann::json;

// Stores that do not implement the policy's operations say so rather than fail to build.
void Gateway::RecordConsent(const Caller&, json, Callback<ConsentRecord> done) {
  done(Status::Unavailable("this store does not record consent"));
}
void Gateway::ListConsents(const Caller&, std::string, Callback<ConsentList> done) {
  done(Status::Unavailable("this store does not list consent"));
}
void Gateway::QueryStats(const Caller&, StatsQuery, Callback<StatsReport> done) {
  done(Status::Unavailable("this store does not report statistics"));
}
void Gateway::SweepRetention(int64_t, Callback<RetentionReport> done) {
  done(Status::Unavailable("this store does not sweep retention"));
}
void Gateway::ReloadPolicy(Callback<PolicyReloadReport> done) {
  done(Status::Unavailable("this store does not reload a policy"));
}

json PolicyReloadReport::ToJson() const {
  json problems_json = json::array();
  for (const Problem& p : problems) problems_json.push_back({{"where", p.where}, {"what", p.what}});
  return {{"ok", ok},
          {"file", file},
          {"version", version},
          {"previous_version", previous_version},
          {"problems", std::move(problems_json)}};
}

namespace core {

constexpr const char* kGatewayActor = "safegate";

AuditEntry RefusalEntry(int64_t now_ms, const std::string& actor, std::string_view operation,
                        const Status& refusal) {
  AuditEntry e;
  e.at_ms = now_ms;
  e.actor = actor.empty() ? "-" : actor;
  e.action = "request_rejected";
  e.reasons = {refusal.detail()};
  json problems = json::array();
  for (const Problem& p : refusal.problems()) {
    problems.push_back({{"where", p.where}, {"what", p.what}});
  }
  e.detail = {{"operation", operation},
              {"error", ErrorCodeName(refusal.code())},
              {"status", HttpStatusFor(refusal.code())}};
  if (!problems.empty()) e.detail["problems"] = std::move(problems);
  return e;
}

Status PrepareDecisionContext(StoreContext& store, const DeliveryPolicy& policy,
                              const PushRequest& request, int64_t now_ms,
                              DecisionContext& context) {
  context.now_ms = now_ms;
  context.policy = policy.Snapshot();
  context.consent = "none";
  if (policy.UsesConsent()) {
    auto state = ConsentStateFor(store, request.record.subject, request.purpose);
    if (!state.ok()) return state.status();
    context.consent = std::move(*state);
  }
  return Status::Ok();
}

void MergeAuditDetail(json& detail, DeliveryDecision& decision) {
  if (!decision.audit_detail.is_object()) return;
  json consent;
  for (auto& [key, value] : decision.audit_detail.items()) {
    if (key == "consent") consent = value;
    detail.emplace(key, std::move(value));  // a member already there stays
  }
  decision.audit_detail = json::object();
  if (!consent.is_null()) decision.audit_detail["consent"] = std::move(consent);
}

RetentionPlan PlanRetention(const DeliveryPolicy& policy, const PushRequest& request,
                            const PushOutcome& outcome,
                            const std::vector<const DeliveryDecision*>& decisions, int64_t now) {
  RetentionPlan plan;
  plan.message_until_ms.assign(outcome.deliveries.size(), 0);
  const int kind_days = policy.RetentionDays(request.record.kind);
  plan.record_until_ms = kind_days > 0 ? now + kind_days * kDayMs : 0;
  for (size_t i = 0; i < decisions.size() && i < outcome.deliveries.size(); ++i) {
    const Delivery& del = outcome.deliveries[i];
    const DeliveryDecision& d = *decisions[i];
    if (del.message_id.empty() || d.retention_days <= 0) continue;
    const int64_t until = now + d.retention_days * kDayMs;
    plan.message_until_ms[i] = until;
    // A permitted copy is read from the record's own body, which must outlive it.
    if (d.decision == "permit") plan.record_until_ms = std::max(plan.record_until_ms, until);
  }
  return plan;
}

namespace {

Status AuditOverride(StoreContext& store, const Caller& caller, const PushRequest& request,
                     const PushOutcome& outcome,
                     const std::vector<const DeliveryDecision*>& decisions, int64_t now) {
  std::vector<std::string> recipients;
  std::string consent;
  for (size_t i = 0; i < decisions.size() && i < outcome.deliveries.size(); ++i) {
    if (!decisions[i]->override_used) continue;
    recipients.push_back(outcome.deliveries[i].recipient);
    if (decisions[i]->audit_detail.is_object() && decisions[i]->audit_detail.contains("consent")) {
      consent = decisions[i]->audit_detail["consent"].get<std::string>();
    }
  }
  if (recipients.empty()) return Status::Ok();

  // The audit agency of this gateway's area hears of every override at once (R2): a notice
  // with ids and times only; what was recorded is in the audit entry.
  std::vector<std::string> notified;
  json notices = json::array();
  const auto registry = store.StoreRegistry();
  const config::Agency* auditor =
      registry ? registry->FindByRole(store.StoreConfig().area, config::Role::kAudit) : nullptr;
  if (auditor != nullptr) {
    json notice = {{"kind", "override_used"},
                   {"record_id", outcome.record_id},
                   {"from", caller.agency},
                   {"recipients", recipients},
                   {"purpose", request.purpose},
                   {"at", FormatTimeMs(now)}};
    auto id = store.StoreNotice(auditor->id, outcome.record_id, request.purpose, notice, now);
    if (!id.ok()) return id.status();
    notified.push_back(auditor->id);
    notices.push_back(*id);
  }

  AuditEntry e;
  e.at_ms = now;
  e.actor = caller.agency;
  e.action = "override_used";
  e.subject = record::PrimaryRef(request.record.subject);
  e.record_id = outcome.record_id;
  e.purpose = request.purpose;
  e.reasons = {"the safeguarding override (DPA 2018 Sch 1 para 18) lifted a consent block"};
  e.detail = {{"recipients", recipients},
              {"consent", consent.empty() ? "none" : consent},
              {"notified", notified},
              {"notices", notices}};
  // What the caller recorded (basis, reason, authoriser) is free text: it is kept with the
  // subject's sealed audit details, never in the entry's clear bytes (R7).
  if (!e.subject.empty() && request.override_request && request.override_request->is_object()) {
    json recorded = json::object();
    for (const char* key : {"basis", "reason", "authorised_by"}) {
      auto it = request.override_request->find(key);
      if (it != request.override_request->end() && it->is_string()) recorded[key] = *it;
    }
    e.text = record::CanonicalJson({{"override", recorded}});
  }
  return store.StoreAppend(e);
}

}  // namespace

Status AfterPushDecisions(StoreContext& store, const DeliveryPolicy& /*policy*/,
                          const Caller& caller, const PushRequest& request,
                          const PushOutcome& outcome,
                          const std::vector<const DeliveryDecision*>& decisions, int64_t now_ms) {
  return AuditOverride(store, caller, request, outcome, decisions, now_ms);
}

TypedJob<PolicyReloadReport> PreparePolicyReload(StoreContext& store,
                                                 const DeliveryPolicy& policy) {
  PolicyReloadReport report;
  report.file = policy.PolicyFile();
  report.previous_version = policy.Version();
  auto reloaded = policy.Reload();
  if (reloaded.ok()) {
    report.ok = true;
    report.version = *reloaded;
  } else {
    report.ok = false;
    report.version = policy.Version();
    report.problems = reloaded.status().problems();
    if (report.problems.empty()) {
      report.problems.push_back({report.file.empty() ? "policy" : report.file,
                                 reloaded.status().detail()});
    }
  }
  // The text of the version now in force, stored with the reload's entry (policy_texts.h):
  // the delivery entries decided with it cite it by version.
  std::shared_ptr<const policy::Policy> in_force = report.ok ? policy.Snapshot() : nullptr;
  TypedJob<PolicyReloadReport> job;
  job.run = [&store, report, in_force](PolicyReloadReport& out) {
    out = report;
    if (in_force) {
      if (Status s = StorePolicyText(store.StoreDb(), *in_force, report.file, store.StoreNowMs());
          !s.ok()) {
        return s;
      }
    }
    AuditEntry e;
    e.at_ms = store.StoreNowMs();
    e.actor = kGatewayActor;
    e.action = report.ok ? "policy_reloaded" : "policy_reload_failed";
    e.detail = {{"file", report.file},
                {"version", report.version},
                {"previous_version", report.previous_version}};
    if (report.ok) {
      e.reasons = {"the policy file was reloaded; version " + report.version + " is in force"};
    } else {
      // Problems name file:line and the policy's own text, never a record's values.
      for (const Problem& p : report.problems) e.reasons.push_back(p.where + ": " + p.what);
      e.detail["kept"] = true;
    }
    return store.StoreAppend(e);
  };
  return job;
}

}  // namespace core
}  // namespace safegate
