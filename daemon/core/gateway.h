// Gateway: the API's operations on the store, independent of HTTP.
//
// The HTTP layer authenticates the caller (certificate -> agency), parses and validates the
// request (record::ParseRecord), then calls one method here. Each method runs its work on
// the store's single writer thread, inside a transaction that is group-committed with other
// requests' work; the callback is invoked on the writer thread *after* the commit is durable
// (synchronous=FULL), or with an error Status when nothing was stored. Callbacks must be
// cheap and must not block: post real work back to the caller's own executor.
//
// Every state change and every refusal writes its audit entries in the same transaction as
// the change. If the audit write fails, the whole operation fails (kInternal) and nothing
// is stored.
//
// Thread-safety: all methods may be called from any thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "daemon/core/clock.h"
#include "record/record.h"
#include "record/status.h"

namespace safegate {

template <typename T>
using Callback = std::function<void(Result<T>)>;

struct Empty {};

// Who is calling: always derived from the client certificate, never from the body.
struct Caller {
  std::string agency;  // registry id
  config::Role role = config::Role::kCsc;
  std::string area;
};

// POST /v1/records, already parsed and validated as JSON.
struct PushRequest {
  record::Record record;
  std::string purpose;                  // non-empty slug
  std::vector<std::string> recipients;  // explicit recipient agency ids (non-empty, unique)
  std::optional<nlohmann::json> override_request;  // the "override" object, if sent
};

struct Delivery {
  std::string recipient;
  std::string decision;              // "permit" | "redact" | "deny"
  std::vector<std::string> reasons;  // why, for a person and for the audit officer
  std::string message_id;            // empty when denied
};

struct PushOutcome {
  bool created = true;  // false: an identical earlier push; the first answer is replayed (200)
  std::string record_id;
  std::vector<Delivery> deliveries;
  nlohmann::json ToJson() const;  // the API's response body
};

struct MailboxMessage {
  std::string message_id;
  std::string type;         // "record" or "notice"
  std::string record_id;    // empty for notices that concern no record
  std::string from;         // sender agency (for notices: the gateway, "safegate")
  std::string purpose;
  int64_t delivered_at_ms = 0;
  nlohmann::json record;    // the record as this recipient may see it (null for notices)
  nlohmann::json notice;    // for notices: {"kind": "ack_overdue"|"expired"|..., ...}
};

struct MailboxPage {
  std::vector<MailboxMessage> messages;
  std::string next;  // opaque cursor; empty when there is no more
  nlohmann::json ToJson() const;
};

struct AuditFilter {
  std::string purpose;  // the purpose of this audit query itself (required by issue 7 later)
  std::string subject;  // subject reference
  std::string agency;   // actor or recipient
  std::string action;
  std::optional<int64_t> from_ms, to_ms;  // entries with from_ms <= at < to_ms
  int limit = 100;      // 1..1000
  std::string after;    // cursor
};

struct AuditEntry {
  int64_t seq = 0;
  int64_t at_ms = 0;
  std::string actor;      // agency id, "safegate" for the gateway itself, or "-" if unknown
  std::string action;     // API.md's audit actions
  std::string subject;    // subject reference, never a name; may be empty
  std::string record_id;
  std::string message_id;
  std::string purpose;
  std::string decision;
  std::vector<std::string> reasons;
  nlohmann::json detail = nlohmann::json::object();  // no personal data
  std::string hash;       // lower-case hex chain hash after this entry
};

struct AuditPage {
  std::vector<AuditEntry> entries;
  std::string next;
  nlohmann::json ToJson() const;
};

struct VerifyReport {
  bool ok = true;
  int64_t entries = 0;
  std::string head;           // hex hash of the last entry ("" for an empty log)
  int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;        // what is wrong at first_bad_seq
  nlohmann::json ToJson() const;
};

// A refusal that happened before a Caller existed or before a request was understood:
// tls_rejected (certificate presented but refused) and request_rejected.
struct Rejection {
  std::string action;   // "tls_rejected" or "request_rejected"
  std::string actor;    // agency id if known, else "-"
  std::string reason;   // e.g. "certificate revoked", "invalid_input"
  nlohmann::json detail = nlohmann::json::object();  // fingerprint, route, status; no PII
};

struct SweepReport {
  int notices = 0;   // overdue notices raised
  int expired = 0;   // messages expired
};

// What the decision step of a push decided for one recipient.
struct DeliveryDecision {
  std::string decision;              // "permit" | "redact" | "deny"
  std::vector<std::string> reasons;  // rule names and lawful basis, for people and the audit
  // For "redact" only: the record as this recipient may see it (canonical record JSON with
  // fields removed). It is sealed and stored with the recipient's message.
  std::optional<nlohmann::json> redacted_record;
};

// The decision step of a push, one recipient at a time: the seam where the policy engine
// plugs in. Decide runs on the store's writer thread, inside the push's transaction, so it
// must be quick, must not block and must not fail (a denial is a normal outcome).
// Thread-safety: implementations must allow concurrent const calls.
class DeliveryPolicy {
 public:
  virtual ~DeliveryPolicy() = default;
  virtual DeliveryDecision Decide(const Caller& caller, const PushRequest& request,
                                  const config::Agency& recipient) const = 0;
};

// The placeholder used until the policy engine lands: recipients of role police, health or
// csc are permitted ("placeholder policy: registered police, health and csc recipients are
// permitted"); any other role is denied.
std::shared_ptr<const DeliveryPolicy> MakePlaceholderDeliveryPolicy();

struct GatewayOptions {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const config::Registry> registry;
  const Clock* clock = nullptr;  // not owned; must outlive the Gateway
  std::shared_ptr<const DeliveryPolicy> policy;  // null: MakePlaceholderDeliveryPolicy()
};

class Gateway {
 public:
  // Opens (creating if needed) the store in config->data_dir, runs migrations, creates the
  // at-rest key file 0600 if missing, and starts the writer thread.
  static Result<std::unique_ptr<Gateway>> Open(GatewayOptions options);
  virtual ~Gateway() = default;

  // Replaces the registry used for recipients (SIGHUP). Thread-safe.
  virtual void SetRegistry(std::shared_ptr<const config::Registry> registry) = 0;

  // 201/200 semantics per API.md. Errors: kForbidden (source.agency != caller, caller role
  // may not push), kInvalidInput (unknown or audit-role recipient, bad purpose), kConflict
  // (same idempotency key, other content). Refusals are audited as request_rejected.
  virtual void Push(const Caller& caller, PushRequest request, Callback<PushOutcome> done) = 0;
  virtual void ReadMailbox(const Caller& caller, int limit, std::string after,
                           Callback<MailboxPage> done) = 0;
  virtual void Ack(const Caller& caller, std::string message_id, Callback<Empty> done) = 0;
  virtual void GetRecord(const Caller& caller, std::string record_id,
                         Callback<nlohmann::json> done) = 0;
  virtual void QueryAudit(const Caller& caller, AuditFilter filter, Callback<AuditPage> done) = 0;
  virtual void VerifyAudit(const Caller& caller, Callback<VerifyReport> done) = 0;
  virtual void Reject(Rejection rejection, Callback<Empty> done) = 0;
  // Raises overdue notices and expires messages as of `now_ms` (the injectable clock's now
  // in production, any time in tests).
  virtual void SweepDeadlines(int64_t now_ms, Callback<SweepReport> done) = 0;

  // Numbers for /metrics; cheap, may be slightly stale.
  struct Stats {
    int64_t audit_entries = 0;
    int64_t commits = 0;
    int64_t committed_jobs = 0;
    double last_commit_ms = 0;
    std::map<std::string, int64_t> mailbox_depth;          // unacked per agency
    std::map<std::string, int64_t> oldest_unacked_age_ms;  // per agency
  };
  virtual Stats GetStats() = 0;

  // Stops taking work, finishes and commits what is queued, joins the writer. Idempotent.
  virtual void Shutdown() = 0;
};

// Offline verification of a data directory's audit chain (safegatectl audit verify --data-dir).
Result<VerifyReport> VerifyAuditChain(const std::string& data_dir);

}  // namespace safegate
