// The sharing policy's part of the store, written against StoreContext like ingest.h:
// consent statements (consents.cc), the decision step's context and bookkeeping of a push
// (policy_push.cc), statistics (stats.cc), the retention sweep (retention.cc) and the audit
// of a policy reload. docs/policy.md ("In the gateway") describes the behaviour; the tables
// are in docs/store.md.
//
// Thread-safety: the Prepare functions run on the calling thread; the jobs they return, and
// the push hooks, run on the store's writer thread inside a job (REQUIRES: a transaction is
// open).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/core/gateway.h"
#include "daemon/core/store_context.h"
#include "record/record.h"
#include "record/status.h"

namespace safegate::core {

constexpr int64_t kDayMs = 24 * 3600 * 1000LL;

// A request_rejected entry for a refusal of `operation`, shaped like the store's own: the API
// error code, the HTTP status and the problems (which never echo the caller's values).
AuditEntry RefusalEntry(int64_t now_ms, const std::string& actor, std::string_view operation,
                        const Status& refusal);

// ---- The push (called from the store's push) -----------------------------------------------

// Fills what the policy's decisions need for this push: the time, the policy snapshot and,
// when the policy uses it, the consent state of the record's subject for the push's purpose.
Status PrepareDecisionContext(StoreContext& store, const DeliveryPolicy& policy,
                              const PushRequest& request, int64_t now_ms,
                              DecisionContext& context);

// Moves a decision's audit detail into its delivery entry's detail (existing members win).
// The decision keeps only its consent state, which the override's entry reads
// (AfterPushDecisions).
void MergeAuditDetail(nlohmann::json& detail, DeliveryDecision& decision);

// Retention deadlines of a pushed record and of each delivered copy (R9), in ms since the
// epoch; 0 means no period (kept until deleted otherwise). The push writes them with its rows.
// `decisions[i]` is the decision for `outcome.deliveries[i]`.
struct RetentionPlan {
  int64_t record_until_ms = 0;
  std::vector<int64_t> message_until_ms;  // one per delivery; 0 for none (or no message)
};
RetentionPlan PlanRetention(const DeliveryPolicy& policy, const PushRequest& request,
                            const PushOutcome& outcome,
                            const std::vector<const DeliveryDecision*>& decisions, int64_t now_ms);

// After the push's rows (with their PlanRetention deadlines) and delivery entries are
// written: for a safeguarding override that lifted a consent block, one override_used entry
// and a notice to the audit agency of the gateway's area (R2).
// `decisions[i]` is the decision for `outcome.deliveries[i]`.
Status AfterPushDecisions(StoreContext& store, const DeliveryPolicy& policy, const Caller& caller,
                          const PushRequest& request, const PushOutcome& outcome,
                          const std::vector<const DeliveryDecision*>& decisions, int64_t now_ms);

// ---- Consents (R3) --------------------------------------------------------------------------

// The latest statement for the subject (under any of its references) and `purpose`:
// "none", "given", "refused" or "withdrawn".
Result<std::string> ConsentStateFor(StoreContext& store, const record::Subject& subject,
                                    const std::string& purpose);

TypedJob<ConsentRecord> PrepareRecordConsent(StoreContext& store, const Caller& caller,
                                             nlohmann::json body);
TypedJob<ConsentList> PrepareListConsents(StoreContext& store, const Caller& caller,
                                          std::string ref);
// The consent statements recorded under `subject` (canonical reference) and the latest state
// per purpose, as GET /v1/subjects/{ref}/consents lists them. Reads only; audits nothing (the
// caller's own entry covers the read). Runs on the writer thread.
Result<ConsentList> LoadConsents(StoreContext& store, const std::string& subject);

// ---- Statistics (R6) ------------------------------------------------------------------------

TypedJob<StatsReport> PrepareStats(StoreContext& store, const Caller& caller, StatsQuery query);

// ---- Retention (R9) -------------------------------------------------------------------------

TypedJob<RetentionReport> PrepareRetentionSweep(StoreContext& store, const DeliveryPolicy& policy,
                                                int64_t now_ms);

// ---- Policy reload --------------------------------------------------------------------------

// Reloads the policy now, on the calling thread (reading and checking the file is no work
// for the writer), and returns the job that audits the outcome.
TypedJob<PolicyReloadReport> PreparePolicyReload(StoreContext& store, const DeliveryPolicy& policy);

}  // namespace safegate::core
