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

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
  // The subject reference the entry concerns, never a name; may be empty. It is not in the
  // entry's bytes: it is sealed in the entry's details under the subject's own key, which
  // erasure destroys (docs/audit-log.md). Read back: empty when erased.
  std::string subject;
  // Free text about the subject (a note, evidence), sealed with the subject; usually empty.
  // REQUIRES: a subject when not empty.
  std::string text;
  std::string record_id;
  std::string message_id;
  std::string purpose;
  std::string decision;
  std::vector<std::string> reasons;
  nlohmann::json detail = nlohmann::json::object();  // no personal data
  std::string details_hash;  // hex SHA-256 of the sealed details; "" when there are none
  bool erased = false;       // the details' key was destroyed (subject_erased)
  std::string hash;       // lower-case hex chain hash after this entry
  // Not part of the entry: what a reader is shown besides it. For a delivery decided by the
  // sharing policy, {"reasons": [sentences], "lawful_basis": text|null}: the entry's reason
  // codes and lawful-basis citation resolved against the policy text of the version it cites
  // (docs/audit-log.md, "Delivery entries"). Null when there is nothing to resolve.
  nlohmann::json explained;
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
  // The Merkle tree recomputed from the entries' bytes (up to the first bad entry).
  int64_t tree_size = 0;
  std::string root_hash;      // hex MTH of those entries
  // Signed tree heads: how many were checked, the latest as the API shows it (null when
  // none), the base64 public key their signatures were checked with ("" when not checked),
  // and every head found at fault, by its position (1 = the first head signed).
  int64_t heads_checked = 0;
  nlohmann::json tree_head;
  std::string public_key;
  struct HeadFault {
    int64_t position = 0;
    int64_t tree_size = 0;
    std::string problem;
  };
  std::vector<HeadFault> head_faults;
  nlohmann::json ToJson() const;
};

// What EraseSubject did.
struct ErasureReport {
  int64_t entries = 0;  // entries whose details can no longer be read
  int64_t seq = 0;      // the subject_erased entry
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
  int transfer_escalations = 0;  // transfer_escalated audit events (docs/transfers.md)
};

// POST /v1/ingest/{format} (and the drop folders): a native export in one of the formats of
// adapters/registry.h. docs/ingest.md describes it.
struct IngestRequest {
  std::string format;    // adapter name, e.g. "niche-xml"
  // The export's bytes. Parsed on the calling thread before Ingest returns, so it need not
  // outlive the call (and may be a mapped file).
  std::string_view content;
  std::string purpose;   // purpose slug of every record
  // Recipient agency ids. Empty: the registry's police, health and csc agencies of the
  // caller's area, other than the caller.
  std::vector<std::string> recipients;
};

struct IngestOutcome {
  std::string format;
  std::string adapter;                  // the adapter's Name(), as audited
  std::vector<std::string> record_ids;  // in export order; a replayed record gives its first id
  int64_t created = 0;                  // records stored by this ingest
  int64_t replayed = 0;                 // records already stored with the same content
  std::vector<std::string> recipients;  // as used (defaults filled in)
  std::vector<Problem> warnings;        // the adapter's, carried
  // {"records": [ids], "count", "created", "replayed", "recipients", "warnings": [...]}
  nlohmann::json ToJson() const;
};

// GET /v1/subjects/{ref}/flags: one flag as the caller may see it.
struct SubjectFlag {
  std::string record_id;
  nlohmann::json record;     // the canonical record as this caller may see it
  bool overdue = false;      // review_by is before today (UTC)
  std::string owner_agency;  // body.owner_agency (else the source agency)
  std::string owner_name;    // from the registry; "" if unknown
};

struct FlagsView {
  std::string subject;                 // the reference asked about
  std::vector<SubjectFlag> flags;      // active flags, owner then start order
  std::vector<std::string> notified;   // owning agencies sent an access notification
  bool silent = false;                 // a silent read: nobody was notified
  // {"subject", "flags": [{"record_id", "type", "level", "status", "start", "end",
  //  "review_by", "overdue", "owner": {"agency", "name", "contact"}, "source": {...},
  //  "record"}], "notified", "silent"}
  nlohmann::json ToJson() const;
};

// A consent statement (R3), as POST /v1/consents records it and GET
// /v1/subjects/{ref}/consents lists it. The latest statement for a subject and purpose wins.
struct ConsentRecord {
  std::string consent_id;               // "con_" + 32 hex
  std::string subject;                  // subject reference, canonical form
  std::string purpose;                  // a policy purpose, e.g. "safeguarding"
  std::string status;                   // "given" | "refused" | "withdrawn"
  std::string recorded_by;              // who took the statement (sealed at rest)
  int64_t recorded_at_ms = 0;           // when the statement was made
  std::optional<std::string> evidence;  // free text or a document reference (sealed at rest)
  std::string agency;                   // the agency that recorded it (the caller)
  int64_t stored_at_ms = 0;             // when the gateway stored it
  // {"consent_id", "subject", "purpose", "status", "recorded_by", "recorded_at",
  //  "evidence"?, "agency", "stored_at"}
  nlohmann::json ToJson() const;
};

struct ConsentList {
  std::string subject;
  std::vector<ConsentRecord> consents;       // in the order they were recorded
  std::map<std::string, std::string> state;  // purpose -> latest state (given|refused|withdrawn)
  nlohmann::json ToJson() const;             // {"subject", "consents": [...], "state": {...}}
};

// GET /v1/stats?from=&to=: RFC 3339 date-times or YYYY-MM-DD dates; empty: unbounded.
struct StatsQuery {
  std::string from;  // inclusive
  std::string to;    // exclusive; empty: now
};

struct StatsReport {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  // policy::SuppressedTable::ToJson(): {"cells": [...], "totals": [...]}, counts of 1-4 and
  // the figures that would reveal them suppressed (null).
  nlohmann::json table = nlohmann::json::object();
  nlohmann::json ToJson() const;  // {"from", "to", "max_suppressed", "cells", "totals"}
};

// A retention sweep (R9): bodies past their retention period deleted.
struct RetentionReport {
  int records_deleted = 0;  // record bodies (the source's copy, and unredacted deliveries)
  int views_deleted = 0;    // redacted per-recipient views
  bool more = false;        // the sweep's bound was reached; run it again
  nlohmann::json ToJson() const;
};

// The outcome of a policy reload (SIGHUP). A refused file is not an error of the call: the
// report says so, and the old policy stays in force.
struct PolicyReloadReport {
  bool ok = false;
  std::string file;
  std::string version;           // in force after the call
  std::string previous_version;  // in force before it
  std::vector<Problem> problems; // "file:line" and the reason, when refused
  nlohmann::json ToJson() const;
};

// What the decision step of a push decided for one recipient.
struct DeliveryDecision {
  std::string decision;              // "permit" | "redact" | "deny"
  std::vector<std::string> reasons;  // rule names and lawful basis, for people (the answer)
  // For "redact" only: the record as this recipient may see it (canonical record JSON with
  // fields removed). It is sealed and stored with the recipient's message.
  std::optional<nlohmann::json> redacted_record;
  // Set by the policy engine (the placeholder leaves them empty). Merged into the delivery's
  // audit entry detail: rule ids, lawful basis, consent state, policy version and the JSON
  // pointers of withheld fields; never values.
  nlohmann::json audit_detail = nlohmann::json::object();
  bool override_used = false;  // the safeguarding override lifted a consent block (R2)
  // Non-empty: the push carries an override that the governing rule does not allow, and the
  // whole push is refused (403) with this reason.
  std::string override_refused{};  // (initialised: brace-built decisions may leave it out)
  int retention_days = 0;  // how long this recipient's copy is kept (R9); 0: no period
  // The reasons as the delivery's audit entry records them: short codes (rule ids) that the
  // entry's policy_version resolves to the sentences. Empty: the entry records `reasons`.
  std::vector<std::string> audit_reasons{};
  std::string lawful_basis{};  // as the policy composed it; empty on deny and without a policy
};

// ---- Out-of-area transfers (docs/transfers.md) --------------------------------------------

// Deadline settings of transfers that replace the configuration's [transfers] section
// (config::Config::Transfers); an unset member keeps the configured value.
struct TransferOptions {
  std::optional<std::vector<std::string>> bank_holidays;  // ISO dates; replaces the default list
  std::optional<int> acceptance_working_days;
  std::optional<int> conference_working_days;
  std::optional<int64_t> escalation_interval_ms;
};

// What this gateway answered a peer gateway's transfer message (POST /v1/peer/messages).
struct PeerMessageReceipt {
  std::string transfer_id;
  std::string message_id;
  std::string kind;        // proposal, ack, accept, decline, conference_held
  bool duplicate = false;  // already applied: nothing was done again
  std::string state;       // the transfer's state at this gateway afterwards
  nlohmann::json ToJson() const;
};

// One sealed gateway-to-gateway message waiting in the outbox.
struct OutboxItem {
  int64_t seq = 0;  // enqueue order; per peer, messages are sent in this order
  std::string peer_area;
  std::string transfer_id;
  std::string message_id;
  std::string sealed;  // the bytes to POST, sealed to the peer (no plaintext)
  int attempts = 0;
  int64_t created_at_ms = 0;
  int64_t next_attempt_at_ms = 0;
};

struct OutboxBatch {
  std::vector<OutboxItem> due;        // the first unsent message of each peer, if its time came
  std::optional<int64_t> next_due_ms;  // the earliest later attempt of any peer, if any
};

// How one attempt to send an outbox message ended.
struct OutboxSettlement {
  enum class Outcome { kDelivered, kRetry, kRefused };
  int64_t seq = 0;
  Outcome outcome = Outcome::kRetry;
  int http_status = 0;             // 0 when no HTTP answer came (connection, TLS, timeout)
  std::string error;               // the peer's error code, or the transport error in words
  int64_t next_attempt_at_ms = 0;  // kRetry: when to try again (the sender's backoff)
};

}  // namespace safegate
namespace safegate::policy {
class Policy;  // policy/policy.h
}  // namespace safegate::policy
namespace safegate {

// What the store looks up for the decision step, inside the push's transaction.
struct DecisionContext {
  int64_t now_ms = 0;
  // The latest consent statement for the record's subject (any of its references) and the
  // push's purpose: "none", "given", "refused" or "withdrawn" (R3).
  std::string consent = "none";
  // The policy the whole push is decided with (DeliveryPolicy::Snapshot()), so that a reload
  // during a push never mixes two policies. Null for policies without one.
  std::shared_ptr<const policy::Policy> policy;
  // The record as canonical record JSON (record::ToJson), made once per push when a policy
  // may redact it; null: made when needed.
  std::shared_ptr<const nlohmann::json> record_json;
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

  // The rest have defaults that keep a policy without them (the placeholder) as it was.
  //
  // Checks a push before anything is decided: kInvalidInput with problems (an unknown
  // purpose, a malformed override).
  virtual Status CheckPush(const PushRequest& request) const {
    (void)request;
    return Status::Ok();
  }
  // True when DecideInContext needs the consent state (the store looks it up only then).
  virtual bool UsesConsent() const { return false; }
  // The policy a push is decided with; taken once per push.
  virtual std::shared_ptr<const policy::Policy> Snapshot() const { return nullptr; }
  // Decide with what the store looked up for this push.
  virtual DeliveryDecision DecideInContext(const Caller& caller, const PushRequest& request,
                                           const config::Agency& recipient,
                                           const DecisionContext& context) const {
    (void)context;
    return Decide(caller, request, recipient);
  }
  // R9: days the gateway keeps a record body of `kind`; 0: no period (nothing expires).
  virtual int RetentionDays(record::Kind kind) const {
    (void)kind;
    return 0;
  }
  // Reloads the policy file (SIGHUP); returns the new version. On failure the old policy
  // stays in force and the Status names file:line and the reason for every problem.
  virtual Result<std::string> Reload() const {
    return Status::Unavailable("no policy file is configured, so there is nothing to reload");
  }
  virtual std::string Version() const { return ""; }     // of the policy in force; "" if none
  virtual std::string PolicyFile() const { return ""; }  // the file Reload reads; "" if none
};

// The placeholder used until the policy engine lands: recipients of role police, health or
// csc are permitted ("placeholder policy: registered police, health and csc recipients are
// permitted"); any other role is denied.
std::shared_ptr<const DeliveryPolicy> MakePlaceholderDeliveryPolicy();

struct GatewayOptions {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const config::Registry> registry;
  const Clock* clock = nullptr;  // not owned; must outlive the Gateway
  // Null: the policy file config->policy names (MakePolicyDeliveryPolicy, loaded by Open,
  // which fails naming file:line for a bad file), or MakePlaceholderDeliveryPolicy() when
  // the configuration names none.
  std::shared_ptr<const DeliveryPolicy> policy;
  // Out-of-area transfers: overrides of config->transfers. Open also loads (or makes, on
  // first start) the gateway's transfer keys in data_dir (daemon/transfer/gateway_keys.h).
  TransferOptions transfers;
  // How long Open waits for the data directory's lock while another process holds it before
  // failing with kUnavailable ("another safegate process is using ..."). The daemon waits a
  // few seconds, since a killed predecessor's lock can outlive it briefly; tools and tests
  // that must not wait keep zero.
  std::chrono::milliseconds lock_wait{0};
};

// The DeliveryPolicy of the policy engine (policy/): loads `path` (problems name file:line)
// and decides every delivery with it; Reload() re-reads the same file. In
// daemon/core/policy_delivery.cc.
Result<std::shared_ptr<const DeliveryPolicy>> MakePolicyDeliveryPolicy(const std::string& path);

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

  // The verifiable audit log (docs/audit-merkle.md). Audit agencies only (else kForbidden);
  // each read is audited as audit_queried. Results are API.md's JSON objects, exactly.
  //
  // The latest signed tree head; kNotFound before the first head is signed.
  virtual void GetTreeHead(const Caller& caller, Callback<nlohmann::json> done) {
    (void)caller;
    done(Status::Internal("this gateway does not serve tree heads"));
  }
  // The inclusion proof of entry `seq` in the tree of `tree_size` entries (0: the latest
  // signed head's size). kInvalidInput unless 1 <= seq <= tree_size <= entries.
  virtual void GetInclusionProof(const Caller& caller, int64_t seq, int64_t tree_size,
                                 Callback<nlohmann::json> done) {
    (void)caller, (void)seq, (void)tree_size;
    done(Status::Internal("this gateway does not serve inclusion proofs"));
  }
  // The consistency proof between the trees of `first` and `second` entries. kInvalidInput
  // unless 1 <= first <= second <= entries.
  virtual void GetConsistencyProof(const Caller& caller, int64_t first, int64_t second,
                                   Callback<nlohmann::json> done) {
    (void)caller, (void)first, (void)second;
    done(Status::Internal("this gateway does not serve consistency proofs"));
  }
  // Erasure at the end of retention (docs/audit-log.md, "Erasure"): destroys the key that
  // seals the audit details of `subject_ref` and unlinks its blind index, then appends a
  // subject_erased entry. The entries, the chain and the Merkle tree stay verifiable; the
  // details are gone. `reason` is a slug (a reason code such as retention_expired), stored in
  // the clear. Audit agencies only (kForbidden); kInvalidInput for a bad reference or reason;
  // kNotFound when the reference has no live key (never seen, or erased already).
  virtual void EraseSubject(const Caller& caller, std::string subject_ref, std::string reason,
                            Callback<ErasureReport> done) {
    (void)caller, (void)subject_ref, (void)reason;
    done(Status::Internal("this gateway does not erase subjects"));
  }

  // GET /v1/audit/subjects/{ref}/report: the subject access report (docs/subject-access.md)
  // for the subject reference `ref`: every entry the log holds about it, sorted into
  // disclosures, refusals, reads and other events, with its current consents and the latest
  // signed tree head. Audit agencies only (kForbidden); kBadRequest when `ref` is not a
  // subject reference; kInvalidInput when `purpose` is empty or not a slug. Audited, in the
  // same transaction, as audit_queried with detail {"what": "subject_report", ...}. In
  // daemon/core/subject_report.cc; stores other than SQLite answer kUnavailable.
  virtual void SubjectReport(const Caller& caller, std::string ref, std::string purpose,
                             Callback<nlohmann::json> done);

  // Parses the export with the named adapter (on the calling thread), then stores every
  // record in ONE job, each exactly as Push stores it (idempotency, decisions, deliveries,
  // audit entries, subject linking), plus one ingest_accepted entry. All or nothing. Errors:
  // kNotFound (no such format), kInvalidInput (any bad row: every problem, with its position;
  // bad purpose or recipients), kForbidden (caller may not push), kConflict (a record already
  // stored with other content). Refusals are audited as request_rejected. Stores other than
  // SQLite answer kUnavailable.
  virtual void Ingest(const Caller& caller, IngestRequest request, Callback<IngestOutcome> done);
  // The active flags on the subject `ref` names, from every linked source the caller may see
  // (the caller is the source, or was delivered the flag with permit or redact); flags past
  // review_by are marked overdue. Each owning agency other than the caller gets an
  // access_notification notice, except on a silent read (a health caller with purpose
  // scheduled_care). Audited: flags_queried, access_notified. Errors: kForbidden (roles other
  // than police, health, csc), kBadRequest (not a subject reference), kInvalidInput (purpose).
  virtual void SubjectFlags(const Caller& caller, std::string ref, std::string purpose,
                            Callback<FlagsView> done);
  // GET /v1/mailbox for a FHIR client (Accept: application/fhir+json): as ReadMailbox, but
  // only the messages that deliver flag records (the only kind with a FHIR form); the others
  // stay in the mailbox for the canonical view. Audited as mailbox_read, detail view "fhir".
  virtual void ReadFlagMailbox(const Caller& caller, int limit, std::string after,
                               Callback<MailboxPage> done);

  // The policy's operations (docs/policy.md, "In the gateway"). Stores other than SQLite
  // answer kUnavailable.
  //
  // POST /v1/consents: `body` is the request's JSON object. Police, health and csc only
  // (kForbidden); kInvalidInput with every problem. Audited as consent_recorded (subject
  // reference, purpose and status; never who recorded it or the evidence).
  virtual void RecordConsent(const Caller& caller, nlohmann::json body,
                             Callback<ConsentRecord> done);
  // GET /v1/subjects/{ref}/consents: the statements recorded under `ref`. Police, health and
  // csc only; kBadRequest when `ref` is not a subject reference. Audited as consents_queried.
  virtual void ListConsents(const Caller& caller, std::string ref, Callback<ConsentList> done);
  // GET /v1/stats: deliveries counted by kind, recipient area and decision, small numbers
  // suppressed (policy/suppression.h). Audit and committee agencies only (kForbidden);
  // kInvalidInput for a bad from/to. Audited as stats_queried.
  virtual void QueryStats(const Caller& caller, StatsQuery query, Callback<StatsReport> done);
  // Deletes bodies past their retention period as of `now_ms`: each deletion audited as
  // retention_deleted; the audit log is untouched and stays verifiable. A bounded batch per
  // call (RetentionReport::more says when to call again).
  virtual void SweepRetention(int64_t now_ms, Callback<RetentionReport> done);
  // Reloads the policy file (SIGHUP) on the calling thread, then audits the outcome:
  // policy_reloaded (the new version) or policy_reload_failed (file:line and the reason of
  // every problem; the old policy stays in force).
  virtual void ReloadPolicy(Callback<PolicyReloadReport> done);

  // Out-of-area transfers (docs/transfers.md), in daemon/core/transfers.cc. Stores other
  // than SQLite answer kUnavailable. Every refusal is audited (request_rejected).
  //
  // POST /v1/transfers by a csc agency of this area: `body` is the request's JSON object
  // {"subject", "to_area", "reason", "records", "note"?}. Answers {"transfer_id", "state",
  // ...}. kInvalidInput naming each bad member (an unknown record, a record the caller does
  // not hold or that is about another subject, a to_area that is not a peer with keys).
  virtual void ProposeTransfer(const Caller& caller, nlohmann::json body,
                               Callback<nlohmann::json> done);
  // GET /v1/transfers/{id}: both areas' csc and police (kForbidden otherwise); kNotFound for
  // an unknown id. Audited as transfer_read.
  virtual void GetTransfer(const Caller& caller, std::string transfer_id,
                           Callback<nlohmann::json> done);
  // POST /v1/transfers/{id}/{action}: "accept" {"role", "accepted_by"}, "decline" {"role",
  // "reason"}, "conference" {"held_at"?}, at the receiving gateway. Answers the transfer as
  // GET shows it. kForbidden (wrong area or role), kConflict (state), kInvalidInput (body).
  virtual void AnswerTransfer(const Caller& caller, std::string transfer_id, std::string action,
                              nlohmann::json body, Callback<nlohmann::json> done);
  // POST /v1/peer/messages: sealed bytes from the peer gateway `peer` (role gateway, agency
  // "gateway:<area>", from its certificate). Opened (docs/transfers.md, refusals) before
  // anything is stored; applied exactly once per (transfer_id, message_id).
  virtual void ReceivePeerMessage(const Caller& peer, std::string sealed,
                                  Callback<PeerMessageReceipt> done);
  // The outbox: the first unsent message of each peer whose next attempt is due at `now_ms`.
  virtual void TakeOutbox(int64_t now_ms, Callback<OutboxBatch> done);
  // Records how an attempt ended: delivered (removed), retry (attempts + 1, next attempt as
  // given) or refused (kept, marked failed, audited transfer_message_refused).
  virtual void SettleOutbox(OutboxSettlement settlement, Callback<Empty> done);
  // Called (on the writer thread, after the commit) whenever a transition may have put a
  // message in the outbox. Must be cheap: the outbox sender only wakes up.
  virtual void SetOutboxListener(std::function<void()> listener) { (void)listener; }

  // Numbers for /metrics; cheap, may be slightly stale.
  struct Stats {
    int64_t audit_entries = 0;
    int64_t commits = 0;
    int64_t committed_jobs = 0;
    double last_commit_ms = 0;
    std::map<std::string, int64_t> mailbox_depth;          // unacked per agency
    std::map<std::string, int64_t> oldest_unacked_age_ms;  // per agency
    // The transfer outbox, per peer area: messages not yet delivered (failed ones apart),
    // the age of the oldest of them, and messages the peer refused (kept, not retried).
    std::map<std::string, int64_t> outbox_depth;
    std::map<std::string, int64_t> outbox_oldest_age_ms;
    std::map<std::string, int64_t> outbox_failed;
  };
  virtual Stats GetStats() = 0;

  // Stops taking work, finishes and commits what is queued, joins the writer. Idempotent.
  virtual void Shutdown() = 0;
};

// Offline verification of a data directory's audit log (safegatectl audit verify --data-dir):
// the chain, the Merkle tree and every signed tree head, read-only, without the at-rest key
// (so sealed details are not opened). Signatures are checked with `public_key_base64` when
// given (an auditor's pinned key), else with the key of <data_dir>/signing.key when this user
// can read it, else with the public key the database recorded (the report says which key).
Result<VerifyReport> VerifyAuditChain(const std::string& data_dir);
Result<VerifyReport> VerifyAuditChain(const std::string& data_dir,
                                      const std::string& public_key_base64);

// Offline proof bundle (docs/audit-merkle.md, "Proof bundles") for entry `seq` against the
// latest signed tree head of a data directory (safegatectl audit prove --data-dir): read-only,
// no key needed. kNotFound when no head covers `seq` yet.
Result<nlohmann::json> MakeAuditProofBundle(const std::string& data_dir, int64_t seq);

}  // namespace safegate
